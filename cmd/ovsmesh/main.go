// Command ovsmesh is the ovsmesh CNI plugin (the "type" in /etc/cni/net.d/10-ovsmesh.conflist).
// The container runtime executes it once per verb; all logic lives in cni/plugin. Stdout
// carries the CNI result, so logs go to stderr.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ovsmesh/ovsmesh/cni/plugin"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	p := &plugin.Plugin{Log: newLogger()}
	skel.PluginMainFuncs(p.Funcs(), plugin.SupportedVersions, "CNI plugin ovsmesh "+version)
}

// newLogger logs JSON to stderr, which runtimes keep in their own logs.
func newLogger() logr.Logger {
	cfg := zap.NewProductionConfig()
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.Sampling = nil
	cfg.OutputPaths = []string{"stderr"}
	z, err := cfg.Build()
	if err != nil {
		return logr.Discard()
	}
	return zapr.NewLogger(z).WithName("ovsmesh-cni")
}
