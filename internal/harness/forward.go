package harness

import (
	"io"
	"net"
	"sync"

	"github.com/containernetworking/plugins/pkg/ns"
)

// forwarder listens on addr inside a node's network namespace and relays every connection to
// target in the harness's own (root) namespace. A socket stays in the namespace it was created
// in, so only the listen needs to happen inside the node namespace; dials happen here.
type forwarder struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
}

func startForwarder(nsName, addr, target string) (*forwarder, error) {
	var ln net.Listener
	err := ns.WithNetNSPath(NSPath(nsName), func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	f := &forwarder{ln: ln, target: target}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("tcp", f.target)
			if err != nil {
				return
			}
			defer u.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
			<-done
		}()
	}
}

func (f *forwarder) Close() {
	if f == nil {
		return
	}
	_ = f.ln.Close()
	f.wg.Wait()
}
