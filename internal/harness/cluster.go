package harness

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/ovsmesh/ovsmesh/internal/testbed"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// OperatorNamespace is where the operator runs and creates the agent DaemonSet.
const OperatorNamespace = "ovsmesh-system"

// Options configure a cluster.
type Options struct {
	Nodes int       // number of nodes (default 3)
	Out   io.Writer // progress output (default: discarded)
	// NoOperator and NoAgents leave those processes out, for tests that drive them.
	NoOperator, NoAgents bool
}

// Cluster is a running simulated cluster.
type Cluster struct {
	Prefix     string // per-run prefix of every namespace and link
	Dir        string // run directory
	Bin        string // built binaries: manager, ovsmesh-agent, ovsmesh (CNI)
	Kubeconfig string // admin kubeconfig (works inside node namespaces too)
	KubectlBin string // path of the kubectl binary
	Client     client.Client
	Nodes      []*Node

	env         *testenv.Env
	out         io.Writer
	underlayNS  string
	apiHostPort string
	operator    *Process
	mu          sync.Mutex
	namespaces  []string // every namespace created, removed in reverse order
	pods        []*Pod
	nextNode    int
}

// Step runs one named step, printing progress and its duration.
func (c *Cluster) Step(name string, fn func() error) error {
	fmt.Fprintf(c.out, "▶ %s ...\n", name)
	t0 := time.Now()
	err := fn()
	if err != nil {
		fmt.Fprintf(c.out, "✗ %s failed after %s: %v\n", name, time.Since(t0).Round(time.Millisecond), err)
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintf(c.out, "✓ %s (%s)\n", name, time.Since(t0).Round(time.Millisecond))
	return nil
}

// Start brings up the control plane, the underlay, the nodes, the operator and the agents.
// On error everything already created is torn down.
func Start(ctx context.Context, o Options) (c *Cluster, err error) {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if err := checkTools(); err != nil {
		return nil, err
	}
	prefix := "om" + testbed.RunID(2)
	// Short path: unix socket paths must fit in 108 bytes.
	dir, err := os.MkdirTemp("/tmp", prefix+"-")
	if err != nil {
		return nil, err
	}
	c = &Cluster{Prefix: prefix, Dir: dir, out: o.Out, underlayNS: prefix + "-ul"}
	defer func() {
		if err != nil {
			c.Close()
			c = nil
		}
	}()

	if err = c.Step("build ovsmesh binaries", c.build); err != nil {
		return
	}
	if err = c.Step("start etcd + kube-apiserver", c.startControlPlane); err != nil {
		return
	}
	if err = c.Step("create the underlay", func() error { return c.createUnderlay(ctx) }); err != nil {
		return
	}
	for i := 0; i < o.Nodes; i++ {
		if _, err = c.AddNode(ctx, !o.NoAgents); err != nil {
			return
		}
	}
	if !o.NoOperator {
		if err = c.Step("start the operator", c.StartOperator); err != nil {
			return
		}
	}
	return c, nil
}

func checkTools() error {
	for _, t := range []string{"ip", "ovs-vsctl", "ovsdb-server", "ovs-vswitchd", "ovsdb-tool", "ethtool", "ping"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("%s not found: run `make testbed` first", t)
		}
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("the harness creates network namespaces and must run as root")
	}
	return nil
}

func (c *Cluster) build() error {
	c.Bin = filepath.Join(c.Dir, "bin")
	// host-local and portmap are tools of go.mod (the versions the agent image ships, which
	// speak CNI 1.1.0); nodes get them under the names the agent's conflist uses.
	cmd := exec.Command("go", "build", "-o", c.Bin+"/", "./cmd/manager", "./cmd/ovsmesh-agent", "./cmd/ovsmesh",
		"github.com/containernetworking/plugins/plugins/ipam/host-local", "github.com/containernetworking/plugins/plugins/meta/portmap")
	cmd.Dir = testenv.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

func (c *Cluster) startControlPlane() error {
	env, err := testenv.Start()
	if err != nil {
		return err
	}
	c.env = env
	c.Client = env.Client
	u, err := url.Parse(env.Config.Host)
	if err != nil {
		return err
	}
	c.apiHostPort = u.Host
	admin, err := env.AddUser(envtest.User{Name: "ovsmesh-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kc, err := admin.KubeConfig()
	if err != nil {
		return err
	}
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, kc, 0o600); err != nil {
		return err
	}
	assets, _ := testenv.AssetsDir()
	c.KubectlBin = filepath.Join(assets, "kubectl")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: OperatorNamespace}}
	return c.Client.Create(context.Background(), ns)
}

func (c *Cluster) createUnderlay(ctx context.Context) error {
	c.namespaces = append(c.namespaces, c.underlayNS)
	if err := addNS(ctx, c.underlayNS); err != nil {
		return err
	}
	if _, err := inNS(ctx, c.underlayNS, "ip", "link", "add", "ulbr", "type", "bridge"); err != nil {
		return err
	}
	_, err := inNS(ctx, c.underlayNS, "ip", "link", "set", "ulbr", "up")
	return err
}

// AddNode adds one more node (namespace, OVS, Node object) and, if startAgent, its agent.
func (c *Cluster) AddNode(ctx context.Context, startAgent bool) (*Node, error) {
	c.mu.Lock()
	c.nextNode++
	idx := c.nextNode
	c.mu.Unlock()
	var n *Node
	err := c.Step(fmt.Sprintf("create node%d (netns, ovsdb-server, ovs-vswitchd, br-phy, Node)", idx), func() error {
		var err error
		n, err = c.addNode(ctx, idx)
		return err
	})
	if n != nil {
		c.mu.Lock()
		c.Nodes = append(c.Nodes, n)
		c.mu.Unlock()
	}
	if err != nil {
		return nil, err
	}
	if startAgent {
		if err := c.StartAgent(n); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// Node returns the node with the given name.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// StartOperator starts the operator process (root namespace).
func (c *Cluster) StartOperator() error {
	p, err := startProcess(c.Dir, "operator", "", []string{"KUBECONFIG=" + c.Kubeconfig, "POD_NAMESPACE=" + OperatorNamespace},
		filepath.Join(c.Bin, "manager"), "--metrics-bind-address=0", "--health-probe-bind-address=0")
	c.operator = p
	return err
}

// StopOperator stops the operator process.
func (c *Cluster) StopOperator() { c.operator.Stop(10 * time.Second) }

// StartAgent starts the node's agent inside its namespace, as the DaemonSet pod would run.
func (c *Cluster) StartAgent(n *Node) error {
	p, err := startProcess(n.Dir, "agent", n.NS, []string{"KUBECONFIG=" + c.Kubeconfig, "NODE_NAME=" + n.Name},
		filepath.Join(c.Bin, "ovsmesh-agent"),
		"--node-name="+n.Name, "--ovsdb-socket="+n.Socket(), "--vswitchd-ctl="+n.VswitchdCtl(), "--cni-conf-dir="+n.CNIConfDir(), "--cni-bin-dir="+n.CNIBinDir(),
		"--cni-ipam-data-dir="+n.IPAMDataDir())
	n.agent = p
	return err
}

// StopAgent stops the node's agent gracefully (SIGTERM).
func (n *Node) StopAgent() { n.agent.Stop(10 * time.Second) }

// AgentLog is the path of the node agent's log file.
func (n *Node) AgentLog() string { return filepath.Join(n.Dir, "agent.log") }

// RemoveNode deletes a node: its agent and OVS stop, its namespace goes, its Node object is
// deleted — what happens when a machine leaves a real cluster.
func (c *Cluster) RemoveNode(ctx context.Context, n *Node) error {
	n.teardown(ctx)
	if err := c.Client.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name}}); err != nil {
		return err
	}
	c.mu.Lock()
	for i, x := range c.Nodes {
		if x == n {
			c.Nodes = append(c.Nodes[:i], c.Nodes[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
	_, _ = run(ctx, "ip", "-n", c.underlayNS, "link", "del", n.ulPort)
	return delNS(ctx, n.NS)
}

// Close tears everything down. It is safe to call more than once and on a partly started
// cluster.
func (c *Cluster) Close() {
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c.operator.Stop(10 * time.Second)
	c.operator = nil
	for _, n := range c.Nodes {
		n.teardown(ctx)
	}
	c.Nodes = nil
	c.mu.Lock()
	nss := append([]string(nil), c.namespaces...)
	for _, p := range c.pods {
		nss = append(nss, p.NS)
	}
	c.namespaces, c.pods = nil, nil
	c.mu.Unlock()
	for i := len(nss) - 1; i >= 0; i-- {
		_ = delNS(ctx, nss[i])
	}
	if c.env != nil {
		_ = c.env.Stop()
		c.env = nil
	}
	if os.Getenv("OVSMESH_KEEP_LOGS") == "" {
		_ = os.RemoveAll(c.Dir)
	}
}
