// Command images builds ovsmesh's images as OCI archives without a container engine
// (internal/images): `make images` writes bin/images/{operator,agent,testpod,pause}.tar and
// prints each archive's refs and manifest digest. Load one into containerd with
// `ctr -n k8s.io images import bin/images/agent.tar`, or push it with crane.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/ovsmesh/ovsmesh/internal/images"
)

func main() {
	out := flag.String("out", "bin/images", "output directory")
	tags := flag.String("tags", "v0.1.0", "comma-separated tags every image gets")
	flag.Parse()
	built, err := images.Build(context.Background(), ".", *out, images.All, strings.Split(*tags, ",")...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, b := range built {
		fmt.Printf("%s  %s  %s\n", b.File, b.Digest, strings.Join(b.Refs, " "))
	}
}
