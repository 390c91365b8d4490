package kubenodes

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ovsmesh/ovsmesh/internal/images"
	"github.com/ovsmesh/ovsmesh/internal/proc"
	"github.com/ovsmesh/ovsmesh/internal/testbed"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// The cluster's addresses. The underlay is a bridge in the root namespace on the first free
// 10.99.N.0/24: the API server serves on its .1, node K is .(10+K), each node's eth0 hangs
// off it. The Service and pod networks exist only inside the nodes' namespaces, so every
// cluster can use the same ones.
const (
	underlayBase   = "10.99"
	underlayRanges = 32
	ServiceCIDR    = "10.96.0.0/24"
	APIServiceIP   = "10.96.0.1" // the `kubernetes` Service
	ClusterCIDR    = "10.244.0.0/16"
	apiPort        = "6443"
	maxNodes       = 16 // node tokens are made up front: the token file is read at start
	// ImageTag is the tag of the images imported into every node; AltAgentTag names the same
	// agent image a second time, for rolling updates.
	ImageTag    = "v0.1.0"
	AltAgentTag = "v0.1.0-rollout"
)

// Options configure a cluster.
type Options struct {
	Nodes int       // number of nodes (default 3)
	Out   io.Writer // progress output (default: discarded)
}

// Cluster is a running real-node cluster.
type Cluster struct {
	Prefix     string // per-run prefix of every namespace, link and cgroup
	Dir        string // run directory
	Kubeconfig string // admin kubeconfig
	KubectlBin string
	Nodes      []*Node

	assets, nodeBin, imageDir string
	bridge                    string
	underlay                  string       // "10.99.N"
	underlayLock              net.Listener // held while the cluster runs: the /24 is this cluster's
	pki                       *pki
	tokens                    map[string]string // user -> token
	out                       io.Writer
	cp                        []*proc.Process // etcd, apiserver, KCM, scheduler (start order)
	mu                        sync.Mutex
	nextNode                  int
}

// Step runs one named step, printing progress and its duration.
func (c *Cluster) Step(name string, fn func() error) error {
	fmt.Fprintf(c.out, "▶ %s ...\n", name)
	t0 := time.Now()
	if err := fn(); err != nil {
		fmt.Fprintf(c.out, "✗ %s failed after %s: %v\n", name, time.Since(t0).Round(time.Millisecond), err)
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintf(c.out, "✓ %s (%s)\n", name, time.Since(t0).Round(time.Millisecond))
	return nil
}

// NodeBinDir is where hack/testbed.sh caches kubelet, kube-scheduler, kube-proxy and
// containerd (`hack/testbed.sh node-bin-dir`).
func NodeBinDir() (string, error) {
	out, err := exec.Command(filepath.Join(testenv.RepoRoot(), "hack", "testbed.sh"), "node-bin-dir").Output()
	if err != nil {
		return "", fmt.Errorf("hack/testbed.sh node-bin-dir: %w", err)
	}
	dir := strings.TrimSpace(string(out))
	for _, b := range []string{"kubelet", "kube-scheduler", "kube-proxy", "containerd", "containerd-shim-runc-v2", "ctr"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("%s has no %s: run `make testbed`", dir, b)
		}
	}
	return dir, nil
}

// Start builds the images, starts the control plane and the nodes. On error everything
// already created is torn down.
func Start(ctx context.Context, o Options) (c *Cluster, err error) {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("the real-node test bed creates namespaces and cgroups and must run as root")
	}
	assets, err := testenv.AssetsDir()
	if err != nil {
		return nil, err
	}
	nodeBin, err := NodeBinDir()
	if err != nil {
		return nil, err
	}
	for _, t := range []string{"ip", "nsenter", "unshare", "mount", "ovs-vsctl", "ovsdb-server", "ovs-vswitchd", "ovsdb-tool", "ethtool", "/usr/sbin/runc", "/usr/lib/cni/loopback"} {
		if _, err := exec.LookPath(t); err != nil {
			return nil, fmt.Errorf("%s not found: run `make testbed` first", t)
		}
	}
	prefix := "ok" + testbed.RunID(2)
	dir, err := os.MkdirTemp("/tmp", prefix+"-")
	if err != nil {
		return nil, err
	}
	c = &Cluster{Prefix: prefix, Dir: dir, out: o.Out, assets: assets, nodeBin: nodeBin,
		KubectlBin: filepath.Join(assets, "kubectl"), bridge: prefix + "-br", imageDir: filepath.Join(dir, "images")}
	defer func() {
		if err != nil {
			c.Close()
			c = nil
		}
	}()
	if c.underlay, c.underlayLock, err = claimUnderlay(); err != nil {
		return
	}
	if err = c.Step("build the images (operator, agent, test pod) as OCI archives", func() error {
		_, err := images.Build(ctx, testenv.RepoRoot(), c.imageDir, images.All, ImageTag)
		if err != nil {
			return err
		}
		// The same agent image under a second tag: a DaemonSet rolling update to "another image".
		_, err = images.Archive(filepath.Join(c.imageDir, "alt"), filepath.Join(c.imageDir, "bin"), []images.Spec{images.Agent}, AltAgentTag)
		return err
	}); err != nil {
		return
	}
	if err = c.Step("start etcd, kube-apiserver, kube-controller-manager, kube-scheduler", func() error { return c.startControlPlane(ctx) }); err != nil {
		return
	}
	for i := 0; i < o.Nodes; i++ {
		if _, err = c.AddNode(ctx); err != nil {
			return
		}
	}
	return c, nil
}

// claimUnderlay takes the first 10.99.N.0/24 that no other cluster holds and that is not
// routed on this machine, so clusters started at once (go test runs packages in parallel)
// never collide, and a network of the machine's own is never used. The hold is an abstract
// unix socket bound in the root network namespace: the kernel releases it when the process
// ends, however it ends, and it leaves no file behind.
func claimUnderlay() (string, net.Listener, error) {
	for i := 0; i < underlayRanges; i++ {
		r := fmt.Sprintf("%s.%d", underlayBase, i)
		l, err := net.Listen("unix", "@ovsmesh-kubenodes-"+r)
		if err != nil {
			continue // held by another cluster
		}
		out, err := exec.Command("ip", "-4", "route", "show", r+".0/24").Output()
		if err == nil && strings.TrimSpace(string(out)) == "" {
			return r, l, nil
		}
		l.Close()
	}
	return "", nil, fmt.Errorf("no free %s.N.0/24 (N < %d) for the underlay: every one is routed here or held by a running cluster", underlayBase, underlayRanges)
}

// BridgeIP is the underlay bridge's address, where the API server serves.
func (c *Cluster) BridgeIP() string { return c.underlay + ".1" }

func (c *Cluster) startControlPlane(ctx context.Context) error {
	if _, err := run(ctx, "ip", "link", "add", c.bridge, "type", "bridge"); err != nil {
		return err
	}
	for _, s := range [][]string{{"addr", "add", c.BridgeIP() + "/24", "dev", c.bridge}, {"link", "set", c.bridge, "up"}} {
		if _, err := run(ctx, "ip", s...); err != nil {
			return err
		}
	}
	pkiDir := filepath.Join(c.Dir, "pki")
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		return err
	}
	p, err := makePKI(pkiDir, []net.IP{net.ParseIP(c.BridgeIP()), net.ParseIP(APIServiceIP), net.ParseIP("127.0.0.1")})
	if err != nil {
		return err
	}
	c.pki = p
	// Static tokens: admin (also the controller manager's and the scheduler's), kube-proxy,
	// and one per node the cluster may ever have (the Node authorizer keys on the user name).
	c.tokens = map[string]string{}
	var tok bytes.Buffer
	addToken := func(user, uid, groups string) {
		c.tokens[user] = testbed.RunID(16)
		fmt.Fprintf(&tok, "%s,%s,%s,%q\n", c.tokens[user], user, uid, groups)
	}
	addToken("admin", "admin", "system:masters")
	addToken("system:kube-proxy", "kube-proxy", "")
	for i := 1; i <= maxNodes; i++ {
		addToken("system:node:"+nodeName(i), nodeName(i), "system:nodes")
	}
	tokFile := filepath.Join(pkiDir, "tokens.csv")
	if err := os.WriteFile(tokFile, tok.Bytes(), 0o600); err != nil {
		return err
	}
	c.Kubeconfig = filepath.Join(c.Dir, "admin.kubeconfig")
	if err := c.writeKubeconfig(c.Kubeconfig, "admin"); err != nil {
		return err
	}

	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	etcdURL, peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	etcd, err := proc.Start(c.Dir, "etcd", "", nil, filepath.Join(c.assets, "etcd"), "--data-dir", filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL, "--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL, "--initial-cluster", "default="+peerURL, "--unsafe-no-fsync")
	if err != nil {
		return err
	}
	c.cp = append(c.cp, etcd)
	api, err := proc.Start(c.Dir, "kube-apiserver", "", nil, filepath.Join(c.assets, "kube-apiserver"),
		"--etcd-servers", etcdURL, "--bind-address", c.BridgeIP(), "--advertise-address", c.BridgeIP(), "--secure-port", apiPort,
		"--tls-cert-file", p.ServingCert, "--tls-private-key-file", p.ServingKey, "--client-ca-file", p.CACert,
		"--service-cluster-ip-range", ServiceCIDR, "--allow-privileged=true", "--authorization-mode", "Node,RBAC",
		"--token-auth-file", tokFile, "--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", p.SAPub, "--service-account-signing-key-file", p.SAKey,
		// apiserver -> kubelet (logs, exec) over the underlay: node host names do not resolve.
		"--kubelet-preferred-address-types", "InternalIP")
	if err != nil {
		return err
	}
	c.cp = append(c.cp, api)
	if err := proc.WaitFor(ctx, 90*time.Second, 250*time.Millisecond, func() bool {
		_, err := c.Kubectl(ctx, "get", "--raw", "/readyz")
		return err == nil && !api.Exited()
	}); err != nil {
		return fmt.Errorf("kube-apiserver not ready: %w\n%s", err, api.Tail(15))
	}
	common := []string{"--kubeconfig", c.Kubeconfig, "--authentication-kubeconfig", c.Kubeconfig,
		"--authorization-kubeconfig", c.Kubeconfig, "--secure-port=0", "--leader-elect=false"}
	kcm, err := proc.Start(c.Dir, "kube-controller-manager", "", nil, append([]string{filepath.Join(c.assets, "kube-controller-manager")},
		append(common, "--service-account-private-key-file", p.SAKey, "--root-ca-file", p.CACert,
			"--use-service-account-credentials=false", "--controllers", "*,-bootstrapsigner,-tokencleaner")...)...)
	if err != nil {
		return err
	}
	c.cp = append(c.cp, kcm)
	sched, err := proc.Start(c.Dir, "kube-scheduler", "", nil, append([]string{filepath.Join(c.nodeBin, "kube-scheduler")}, common...)...)
	if err != nil {
		return err
	}
	c.cp = append(c.cp, sched)
	// Pods cannot be admitted before the controller manager made the default ServiceAccount.
	return proc.WaitFor(ctx, 60*time.Second, 250*time.Millisecond, func() bool {
		_, err := c.Kubectl(ctx, "get", "serviceaccount", "default", "-n", "default")
		return err == nil
	})
}

func nodeName(i int) string { return fmt.Sprintf("node%d", i) }

// writeKubeconfig writes a kubeconfig for user (a static token) at path.
func (c *Cluster) writeKubeconfig(path, user string) error {
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: ovsmesh
  cluster: {server: "https://%s:%s", certificate-authority-data: %s}
users:
- name: %s
  user: {token: %s}
contexts:
- name: ovsmesh
  context: {cluster: ovsmesh, user: %s}
current-context: ovsmesh
`, c.BridgeIP(), apiPort, base64.StdEncoding.EncodeToString(c.pki.CAPEM), user, c.tokens[user], user)
	return os.WriteFile(path, []byte(kc), 0o600)
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Kubectl runs kubectl with the admin kubeconfig.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	return run(ctx, c.KubectlBin, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
}

// KubectlStdin runs kubectl with stdin.
func (c *Cluster) KubectlStdin(ctx context.Context, stdin string, args ...string) (string, error) {
	return testbed.Run(ctx, 3*time.Minute, stdin, c.KubectlBin, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
}

// Close tears everything down; safe on a partly started cluster and more than once.
func (c *Cluster) Close() {
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c.mu.Lock()
	nodes := c.Nodes
	c.Nodes = nil
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func(n *Node) { defer wg.Done(); n.teardown(ctx) }(n)
	}
	wg.Wait()
	for i := len(c.cp) - 1; i >= 0; i-- {
		c.cp[i].Stop(10 * time.Second)
	}
	c.cp = nil
	_, _ = run(ctx, "ip", "link", "del", c.bridge)
	if os.Getenv("OVSMESH_KEEP_LOGS") == "" {
		_ = os.RemoveAll(c.Dir)
	}
	if c.underlayLock != nil {
		c.underlayLock.Close()
		c.underlayLock = nil
	}
}

// run executes a setup or inspection tool (testbed.Run; kubectl wait runs up to 180 s).
func run(ctx context.Context, name string, args ...string) (string, error) {
	return testbed.Run(ctx, 3*time.Minute, "", name, args...)
}
