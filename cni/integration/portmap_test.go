package integration

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// TestPortmapChaining chains Debian's portmap (spec <= 1.0.0, hence a 1.0.0 conflist) after
// ovsmesh: a hostPort on the node reaches a server in the pod while attached, and no
// longer after DEL.
func TestPortmapChaining(t *testing.T) {
	n := newNode(t, nodeOpts{})
	in := n.input("1.0.0")
	in.Portmap = true
	l := n.list(in)
	if len(l.Plugins) != 2 || l.Plugins[1].Network.Type != "portmap" {
		t.Fatalf("conflist plugins %d, want ovsmesh then portmap", len(l.Plugins))
	}
	p := n.newPod(t)
	rt := p.rt()
	rt.CapabilityArgs = map[string]any{"portMappings": []map[string]any{{"hostPort": 18080, "containerPort": 8080, "protocol": "tcp"}}}
	if _, err := n.add(t, l, rt); err != nil {
		t.Fatalf("ADD through ovsmesh and portmap: %v", err)
	}
	t.Cleanup(func() { _ = n.del(t, l, rt) })

	var ln net.Listener
	inPod(t, p, func() (err error) { ln, err = net.Listen("tcp", ":8080"); return err })
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hello from the pod\n"))
			c.Close()
		}
	}()
	hostPort := net.JoinHostPort(n.gw.String(), "18080")
	dial := func() (string, error) {
		var line string
		err := n.try(func() error {
			c, err := net.DialTimeout("tcp", hostPort, 2*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			line, err = bufio.NewReader(c).ReadString('\n')
			return err
		})
		return strings.TrimSpace(line), err
	}

	if got, err := dial(); err != nil || got != "hello from the pod" {
		t.Fatalf("node %s -> pod :8080: %q, %v", hostPort, got, err)
	}
	// No CHECK through this chain: Debian's portmap 1.1.1 fails CHECK for IPv4-only pods
	// whenever ip6tables works (containernetworking/plugins#819, fixed upstream later).
	if err := n.del(t, l, rt); err != nil {
		t.Fatalf("DEL through the chain: %v", err)
	}
	if got, err := dial(); err == nil {
		t.Errorf("hostPort still forwards after DEL: %q", got)
	}
}
