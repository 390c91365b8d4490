package bench

import (
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/containernetworking/plugins/pkg/ns"
)

// forwardAPI listens on addr inside network namespace nsName and relays every connection to
// target in this (root) namespace: a process in the namespace reaches the API server on the
// root loopback through it, the way node-local API load balancers work. A socket stays in
// the namespace it was created in, so only the listen happens inside. Closed at e.Close. The
// counter it returns is the number of bytes the namespace side has sent (requests, TLS and
// HTTP/2 framing included): what a client there costs the API server.
func (e *Env) forwardAPI(nsName, addr, target string) (*atomic.Int64, error) {
	sent := new(atomic.Int64)
	var ln net.Listener
	err := ns.WithNetNSPath("/run/netns/"+nsName, func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				t, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer t.Close()
				done := make(chan struct{}, 2)
				go func() { io.Copy(counting{t, sent}, c); done <- struct{}{} }()
				go func() { io.Copy(c, t); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	e.Defer(func() { ln.Close() })
	return sent, nil
}

// counting is a writer that adds what it writes to n as it goes.
type counting struct {
	w io.Writer
	n *atomic.Int64
}

func (c counting) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	c.n.Add(int64(k))
	return k, err
}
