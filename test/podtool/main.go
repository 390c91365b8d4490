// Command podtool is the one binary of the test-pod image (internal/images.TestPod) that the
// real-node tests and the demo run as their workload, and, run with no arguments, the pause
// container of the test bed's nodes:
//
//	podtool                      pause: sleep until SIGTERM/SIGINT, reaping children (PID 1)
//	podtool serve [ADDR]         HTTP on ADDR (default :8080): answers "HOSTNAME IP..."
//	podtool ping [flags] IP...   ICMP echo to every IP; one JSON line of counts per IP
//	podtool get [flags] URL      HTTP GET; prints the body
//
// It is static (CGO off) and needs nothing in the image but itself. Exit status 0 means the
// command's check passed, 1 that it failed (the output says which target), 2 a usage error.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] == "pause" {
		pause()
		return
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "ping":
		err = ping(os.Args[2:])
	case "get":
		err = get(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "usage: podtool [pause|serve|ping|get] ...\n")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "podtool:", err)
		os.Exit(1)
	}
}

// pause is what a sandbox container does: hold the pod's namespaces until told to stop. As
// PID 1 of a shared PID namespace it also reaps orphans.
func pause() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for {
			var ws syscall.WaitStatus
			if _, err := syscall.Wait4(-1, &ws, 0, nil); err == syscall.ECHILD {
				select {}
			}
		}
	}()
	<-sig
}
