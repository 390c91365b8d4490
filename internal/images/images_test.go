package images

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// TestBuildIsReproducible builds every image twice, into two directories, and requires the
// same manifest digests and byte-identical archives.
func TestBuildIsReproducible(t *testing.T) {
	ctx := context.Background()
	a, b := t.TempDir(), t.TempDir()
	first, err := Build(ctx, testenv.RepoRoot(), a, All, "v1")
	if err != nil {
		t.Fatal(err)
	}
	second, err := Build(ctx, testenv.RepoRoot(), b, All, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != len(All)+1 || len(second) != len(first) {
		t.Fatalf("built %d and %d archives, want %d", len(first), len(second), len(All)+1)
	}
	for i := range first {
		if first[i].Digest != second[i].Digest {
			t.Errorf("%s: digest %s, then %s", first[i].Spec.Name, first[i].Digest, second[i].Digest)
		}
		x, _ := os.ReadFile(first[i].File)
		y, _ := os.ReadFile(second[i].File)
		if len(x) == 0 || string(x) != string(y) {
			t.Errorf("%s: archives differ (%d and %d bytes)", first[i].Spec.Name, len(x), len(y))
		}
	}
	// Another tag names the same image: the manifest digest does not change.
	again, err := Archive(t.TempDir(), filepath.Join(a, "bin"), []Spec{Agent}, "v1", "v2")
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Digest != first[1].Digest || len(again[0].Refs) != 2 {
		t.Errorf("agent tagged twice: %s %v, want digest %s and two refs", again[0].Digest, again[0].Refs, first[1].Digest)
	}
	checkArchive(t, again[0])
}

// checkArchive reads an archive back as an OCI layout: one index entry per ref, each naming
// the image for containerd, and the layer holding exactly the spec's files as executables.
func checkArchive(t *testing.T, b Built) {
	t.Helper()
	dir := t.TempDir()
	untar(t, b.File, dir)
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, d := range im.Manifests {
		refs = append(refs, d.Annotations["io.containerd.image.name"])
		if d.Digest != b.Digest {
			t.Errorf("index entry %s, want %s", d.Digest, b.Digest)
		}
	}
	if !reflect.DeepEqual(refs, b.Refs) {
		t.Errorf("refs %v, want %v", refs, b.Refs)
	}
	img, err := idx.Image(b.Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cf.Config.Entrypoint, b.Spec.Entrypoint) || cf.Config.User != b.Spec.User || cf.OS != "linux" {
		t.Errorf("config: entrypoint %v user %q os %q; want %v %q linux", cf.Config.Entrypoint, cf.Config.User, cf.OS, b.Spec.Entrypoint, b.Spec.User)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want one", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if h.Mode&0o111 == 0 || h.Size == 0 {
				t.Errorf("%s: mode %o size %d, want an executable", h.Name, h.Mode, h.Size)
			}
			got = append(got, "/"+h.Name)
		}
	}
	var want []string
	for _, f := range b.Spec.Files {
		want = append(want, f.Path)
	}
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("files %v, want %v", got, want)
	}
}

func untar(t *testing.T, file, dir string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDockerfilesDescribeTheSameImages holds the Dockerfiles (for users with a container
// engine) to the specs `make images` builds: the same files at the same paths from binaries
// of the same names, the same entrypoint and user.
func TestDockerfilesDescribeTheSameImages(t *testing.T) {
	for _, s := range All {
		if s.Dockerfile == "" {
			continue
		}
		t.Run(s.Dockerfile, func(t *testing.T) {
			files, entry, user := parseFinalStage(t, filepath.Join(testenv.RepoRoot(), s.Dockerfile))
			var want []File
			want = append(want, s.Files...)
			sort.Slice(want, func(i, j int) bool { return want[i].Path < want[j].Path })
			if !reflect.DeepEqual(files, want) {
				t.Errorf("files:\n Dockerfile %v\n spec       %v", files, want)
			}
			if !reflect.DeepEqual(entry, s.Entrypoint) {
				t.Errorf("ENTRYPOINT %v, spec %v", entry, s.Entrypoint)
			}
			if user != s.User {
				t.Errorf("USER %q, spec %q", user, s.User)
			}
		})
	}
}

// parseFinalStage reads the COPY --from lines, ENTRYPOINT and USER after the last FROM. A
// COPY whose destination ends in / puts each source there under its own name.
func parseFinalStage(t *testing.T, file string) (files []File, entry []string, user string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "FROM ") {
			lines = nil
		}
		lines = append(lines, l)
	}
	for _, l := range lines {
		fields := strings.Fields(l)
		switch {
		case len(fields) >= 4 && fields[0] == "COPY" && strings.HasPrefix(fields[1], "--from="):
			srcs, dst := fields[2:len(fields)-1], fields[len(fields)-1]
			for _, src := range srcs {
				p := dst
				if strings.HasSuffix(dst, "/") {
					p = dst + path.Base(src)
				}
				files = append(files, File{Path: p, Binary: path.Base(src)})
			}
		case len(fields) >= 2 && fields[0] == "ENTRYPOINT":
			if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "ENTRYPOINT")), &entry); err != nil {
				t.Fatalf("ENTRYPOINT %q: %v", l, err)
			}
		case len(fields) == 2 && fields[0] == "USER":
			user = fields[1]
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, entry, user
}
