// Command kubectl-ovsmesh is the kubectl plugin `kubectl ovsmesh` (status, diagnose): put it
// on PATH and kubectl finds it. All logic is in internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ovsmesh/ovsmesh/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, cli.DefaultEnv(), os.Args[1:])
	stop()
	os.Exit(code)
}
