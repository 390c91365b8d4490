package harness

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
)

// Pod is a "pod": a network namespace attached by the CNI plugin, as a runtime would.
type Pod struct {
	Name        string
	NS          string
	Node        *Node
	IP          string
	ContainerID string
}

// runtimeConf is what a container runtime passes to CNI for this pod.
func (p *Pod) runtimeConf() *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: p.ContainerID, NetNS: NSPath(p.NS), IfName: "eth0",
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", p.Name}}}
}

func (c *Cluster) cni(n *Node) (*libcni.CNIConfig, *libcni.NetworkConfigList, error) {
	list, err := libcni.LoadNetworkConf(n.CNIConfDir(), "ovsmesh")
	if err != nil {
		return nil, nil, fmt.Errorf("%s: loading the CNI config the agent wrote: %w", n.Name, err)
	}
	cfg := libcni.NewCNIConfigWithCacheDir([]string{n.CNIBinDir()}, filepath.Join(n.Dir, "cni-cache"), nil)
	return cfg, list, nil
}

// AddPod creates a pod namespace on node n and runs CNI ADD for it, from inside the node's
// namespace, exactly as the node's runtime would.
func (c *Cluster) AddPod(ctx context.Context, n *Node, name string) (*Pod, error) {
	p := &Pod{Name: name, NS: fmt.Sprintf("%s-%s", c.Prefix, name), Node: n, ContainerID: c.Prefix + "-" + name}
	c.mu.Lock()
	c.pods = append(c.pods, p)
	c.mu.Unlock()
	if err := addNS(ctx, p.NS); err != nil {
		return nil, err
	}
	cfg, list, err := c.cni(n)
	if err != nil {
		return nil, err
	}
	var res *types100.Result
	err = ns.WithNetNSPath(NSPath(n.NS), func(ns.NetNS) error {
		r, err := cfg.AddNetworkList(ctx, list, p.runtimeConf())
		if err != nil {
			return err
		}
		res, err = types100.NewResultFromResult(r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("CNI ADD %s on %s: %w", name, n.Name, err)
	}
	if len(res.IPs) == 0 {
		return nil, fmt.Errorf("CNI ADD %s: result has no IP", name)
	}
	p.IP = res.IPs[0].Address.IP.String()
	// Offloads off on the pod side as well: see offloadsOff.
	offloadsOff(ctx, p.NS, "eth0")
	return p, nil
}

// DelPod runs CNI DEL and removes the pod namespace.
func (c *Cluster) DelPod(ctx context.Context, p *Pod) error {
	cfg, list, err := c.cni(p.Node)
	if err != nil {
		return err
	}
	err = ns.WithNetNSPath(NSPath(p.Node.NS), func(ns.NetNS) error {
		return cfg.DelNetworkList(ctx, list, p.runtimeConf())
	})
	if err != nil {
		return fmt.Errorf("CNI DEL %s: %w", p.Name, err)
	}
	c.mu.Lock()
	for i, x := range c.pods {
		if x == p {
			c.pods = append(c.pods[:i], c.pods[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
	return delNS(ctx, p.NS)
}

// Pods lists the pods the harness has attached.
func (c *Cluster) Pods() []*Pod {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Pod(nil), c.pods...)
}

// Exec runs a command inside the pod's namespace.
func (p *Pod) Exec(ctx context.Context, args ...string) (string, error) {
	return inNS(ctx, p.NS, args...)
}

// Ping sends count pings from p to ip and returns how many came back.
func (p *Pod) Ping(ctx context.Context, ip string, count int, extra ...string) (int, error) {
	args := append([]string{"ping", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "1"}, extra...)
	out, err := p.Exec(ctx, append(args, ip)...)
	got := parseReceived(out)
	if got < 0 {
		return 0, fmt.Errorf("ping %s from %s: %v: %s", ip, p.Name, err, out)
	}
	return got, nil
}

// PingSummary reads ping's summary line ("N packets transmitted, M received"): what a
// continuous ping stopped with Process.Interrupt reports. ok is false without one.
func PingSummary(out string) (sent, received int, ok bool) {
	m := pingSummary.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, false
	}
	sent, _ = strconv.Atoi(m[1])
	received, _ = strconv.Atoi(m[2])
	return sent, received, true
}

var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// parseReceived extracts "N received" from ping's summary; -1 when absent.
func parseReceived(out string) int {
	for _, f := range strings.Split(out, ",") {
		f = strings.TrimSpace(f)
		if strings.HasSuffix(f, " received") {
			n, err := strconv.Atoi(strings.TrimSuffix(f, " received"))
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// CNIStatus runs CNI STATUS on node n's conflist, as a runtime that speaks spec 1.1.0 does
// before it sends pods (nil: the network is ready). It returns the conflist's cniVersion too.
func (c *Cluster) CNIStatus(ctx context.Context, n *Node) (string, error) {
	cfg, list, err := c.cni(n)
	if err != nil {
		return "", err
	}
	err = ns.WithNetNSPath(NSPath(n.NS), func(ns.NetNS) error {
		return cfg.GetStatusNetworkList(ctx, list)
	})
	return list.CNIVersion, err
}

// CNIGC runs CNI GC on node n with keep as the valid attachments, as a runtime does after
// a restart: everything of the network on n that is not in keep is removed.
func (c *Cluster) CNIGC(ctx context.Context, n *Node, keep []*Pod) error {
	cfg, list, err := c.cni(n)
	if err != nil {
		return err
	}
	args := &libcni.GCArgs{}
	for _, p := range keep {
		if p.Node == n {
			args.ValidAttachments = append(args.ValidAttachments, types.GCAttachment{ContainerID: p.ContainerID, IfName: "eth0"})
		}
	}
	return ns.WithNetNSPath(NSPath(n.NS), func(ns.NetNS) error {
		return cfg.GCNetworkList(ctx, list, args)
	})
}
