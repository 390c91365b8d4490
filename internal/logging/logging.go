// Package logging builds the logr.Logger every ovsmesh binary uses: zap underneath, through
// zapr, with the level and encoding chosen by flags so operators can switch to JSON in
// production and to console output when reading a terminal.
package logging

import (
	"flag"
	"fmt"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Options are the logging flags.
type Options struct {
	Level    string // debug, info, warn, error
	Encoding string // json or console
}

// BindFlags registers --log-level and --log-encoding on fs.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.Encoding, "log-encoding", "console", "log encoding: json or console")
}

// New returns a logr.Logger backed by zap.
func New(o Options) (logr.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(o.Level)); err != nil {
		return logr.Discard(), fmt.Errorf("--log-level %q: %w", o.Level, err)
	}
	if o.Encoding != "json" && o.Encoding != "console" {
		return logr.Discard(), fmt.Errorf("--log-encoding %q: must be json or console", o.Encoding)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Encoding = o.Encoding
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.Sampling = nil // never drop reconcile logs: they are how a user debugs convergence
	z, err := cfg.Build()
	if err != nil {
		return logr.Discard(), err
	}
	return zapr.NewLogger(z), nil
}
