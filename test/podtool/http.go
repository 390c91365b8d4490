package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// serve answers every request with the pod's hostname and addresses, so a client can tell
// which pod (and, through a Service, which endpoint) it reached. It stops on SIGTERM.
func serve(args []string) error {
	addr := ":8080"
	if len(args) > 0 {
		addr = args[0]
	}
	host, _ := os.Hostname()
	var ips []string
	if as, err := net.InterfaceAddrs(); err == nil {
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() {
				ips = append(ips, n.IP.String())
			}
		}
	}
	reply := host + " " + strings.Join(ips, " ") + "\n"
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, reply)
	})}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Println("serving on", addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// get fetches URL, retrying for -retry-for on errors (a Service's rules can trail its
// endpoints by a sync period), and prints the body.
func get(args []string) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 3*time.Second, "per-request timeout")
	retryFor := fs.Duration("retry-for", 0, "keep retrying failed requests this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("get: one URL expected")
	}
	url := fs.Arg(0)
	c := &http.Client{Timeout: *timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(*retryFor)
	for {
		resp, err := c.Get(url)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				fmt.Print(string(body))
				return nil
			}
			err = fmt.Errorf("GET %s: %s %v", url, resp.Status, rerr)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
