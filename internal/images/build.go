package images

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// epoch is every timestamp in an image: a build records nothing about when it ran.
var epoch = time.Unix(0, 0).UTC()

// BuildBinaries builds every Binary (static, for linux on this machine's architecture) from
// the module at repoRoot into dir. -trimpath and an empty build id make the output depend on
// the sources and the toolchain only.
func BuildBinaries(ctx context.Context, repoRoot, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	args := []string{"build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", dir + "/"}
	for _, b := range Binaries {
		args = append(args, b.Package)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Image assembles spec from the binaries in binDir: an empty base, one layer, a config that
// says only what the image needs (entrypoint, user, PATH).
func Image(spec Spec, binDir string) (v1.Image, error) {
	layerTar, err := layerTar(spec, binDir)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	// OCI media types throughout (empty.Image starts as a Docker v2 manifest).
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = runtime.GOARCH, "linux"
	cf.Created = v1.Time{Time: epoch}
	cf.Config = v1.Config{
		Entrypoint: spec.Entrypoint,
		User:       spec.User,
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		WorkingDir: "/",
		Labels:     map[string]string{"org.opencontainers.image.title": path.Base(spec.Repository)},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	return mutate.CreatedAt(img, v1.Time{Time: epoch})
}

// layerTar is the image's one layer: the binaries at their paths, every parent directory,
// and /tmp, in sorted order with fixed owners and times.
func layerTar(spec Spec, binDir string) ([]byte, error) {
	dirs := map[string]bool{"tmp": true}
	files := map[string]string{} // path in the image (no leading /) -> source
	for _, f := range spec.Files {
		p := strings.TrimPrefix(path.Clean(f.Path), "/")
		files[p] = filepath.Join(binDir, f.Binary)
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var names []string
	for d := range dirs {
		names = append(names, d+"/")
	}
	for f := range files {
		names = append(names, f)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		h := &tar.Header{Name: n, ModTime: epoch, Uid: 0, Gid: 0, Uname: "root", Gname: "root", Format: tar.FormatPAX}
		if strings.HasSuffix(n, "/") {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
			if n == "tmp/" {
				h.Mode = 0o1777
			}
			if err := tw.WriteHeader(h); err != nil {
				return nil, err
			}
			continue
		}
		data, err := os.ReadFile(files[n])
		if err != nil {
			return nil, fmt.Errorf("image %s: %w (run BuildBinaries first)", spec.Name, err)
		}
		h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o755, int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteArchive writes img as an OCI image-layout tar at file, named by every ref (one index
// entry each, all pointing at the same manifest). containerd names the imported image from
// io.containerd.image.name; other tools read org.opencontainers.image.ref.name.
func WriteArchive(file string, img v1.Image, refs ...string) (v1.Hash, error) {
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	dir, err := os.MkdirTemp(filepath.Dir(file), ".oci-*")
	if err != nil {
		return v1.Hash{}, err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	for _, ref := range refs {
		ann := map[string]string{"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref}
		if err := p.AppendImage(img, layout.WithAnnotations(ann)); err != nil {
			return v1.Hash{}, err
		}
	}
	if err := tarDir(dir, file); err != nil {
		return v1.Hash{}, err
	}
	return digest, nil
}

// tarDir writes the files under dir into a tar at file, sorted, with fixed times and owners.
func tarDir(dir, file string) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			rel += "/"
		}
		names = append(names, rel)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	tmp := file + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	tw := tar.NewWriter(out)
	for _, n := range names {
		h := &tar.Header{Name: n, ModTime: epoch, Format: tar.FormatPAX, Mode: 0o644, Typeflag: tar.TypeReg}
		if strings.HasSuffix(n, "/") {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// Built is one archive Build wrote.
type Built struct {
	Spec   Spec
	File   string
	Refs   []string
	Digest v1.Hash
}

// Build builds the binaries into outDir/bin and writes outDir/NAME.tar for every spec, tagged
// with each of tags, plus pause.tar (the test pod binary as PauseRef).
func Build(ctx context.Context, repoRoot, outDir string, specs []Spec, tags ...string) ([]Built, error) {
	binDir := filepath.Join(outDir, "bin")
	if err := BuildBinaries(ctx, repoRoot, binDir); err != nil {
		return nil, err
	}
	return Archive(outDir, binDir, specs, tags...)
}

// Archive writes the archives of specs from binaries already built in binDir.
func Archive(outDir, binDir string, specs []Spec, tags ...string) ([]Built, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	var built []Built
	write := func(spec Spec, file string, refs []string) error {
		img, err := Image(spec, binDir)
		if err != nil {
			return err
		}
		d, err := WriteArchive(file, img, refs...)
		if err != nil {
			return fmt.Errorf("image %s: %w", spec.Name, err)
		}
		built = append(built, Built{Spec: spec, File: file, Refs: refs, Digest: d})
		return nil
	}
	for _, s := range specs {
		var refs []string
		for _, t := range tags {
			refs = append(refs, s.Repository+":"+t)
		}
		if err := write(s, filepath.Join(outDir, s.Name+".tar"), refs); err != nil {
			return nil, err
		}
	}
	pause := TestPod
	pause.Name = "pause"
	if err := write(pause, filepath.Join(outDir, "pause.tar"), []string{PauseRef}); err != nil {
		return nil, err
	}
	return built, nil
}
