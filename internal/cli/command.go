package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// Output formats of -o.
const (
	OutputText = "text"
	OutputJSON = "json"
)

// Env is what the commands take from the process, replaceable in tests.
type Env struct {
	Out, Err io.Writer
	Getenv   func(string) string
	Now      func() time.Time
}

// DefaultEnv is the real process: stdout, stderr, the environment and the clock.
func DefaultEnv() Env {
	return Env{Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv, Now: time.Now}
}

// root holds the flags every command shares.
type root struct {
	env    Env
	kube   *genericclioptions.ConfigFlags
	output string
	color  string
}

// NewCommand is `kubectl ovsmesh` with its subcommands. The kubeconfig flags are kubectl's
// own (--kubeconfig, --context, --server, --token, ...), so the plugin reaches the cluster
// exactly as the kubectl that runs it would.
func NewCommand(env Env) *cobra.Command {
	r := &root{env: env, kube: genericclioptions.NewConfigFlags(true)}
	cmd := &cobra.Command{
		Use:   "kubectl-ovsmesh",
		Short: "Inspect the ovsmesh pod network",
		Long: "kubectl ovsmesh shows the state of the ovsmesh pod network as the operator and the node agents " +
			"report it in the API (NetworkCluster, NodeSubnets, heartbeat Leases, Events).",
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl ovsmesh"},
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	cmd.SetOut(env.Out)
	cmd.SetErr(env.Err)
	f := cmd.PersistentFlags()
	r.kube.AddFlags(f)
	f.Lookup("namespace").Usage = "the operator's namespace, where the agent pods and heartbeat Leases are (default " + defaultNamespace + ")"
	f.StringVarP(&r.output, "output", "o", OutputText, "output format: text or json")
	f.StringVar(&r.color, "color", ColorAuto, "colour the text output: auto (only on a terminal, unless NO_COLOR is set), always or never")
	cmd.AddCommand(r.statusCommand(), r.diagnoseCommand(), r.traceCommand())
	return cmd
}

func (r *root) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "The NetworkCluster summary, every node's state and the node × node tunnel matrix",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			in, err := gatherStatus(cmd.Context(), c, r.namespace())
			if err != nil {
				return err
			}
			now := r.env.Now()
			rep := BuildStatus(in, now)
			return r.print(rep, func(w io.Writer, color bool) { WriteStatus(w, rep, color, now) })
		},
	}
}

func (r *root) diagnoseCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "diagnose NODE",
		Short: "One node: Ready reason, OVS liveness, MTU, heartbeat, unhealthy peers, agent pod, recent Events",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			in, err := gatherDiagnose(cmd.Context(), c, r.namespace(), args[0])
			if err != nil {
				return err
			}
			now := r.env.Now()
			rep := BuildDiagnose(in, now)
			return r.print(rep, func(w io.Writer, color bool) { WriteDiagnose(w, rep, color, now) })
		},
	}
}

func (r *root) traceCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "trace [NAMESPACE/]POD-A [NAMESPACE/]POD-B",
		Short: "The path a packet from pod A to pod B takes: each node's OVS bridge, the tunnel it leaves by, and the verdict",
		Long: "trace asks the agent on each node the packet crosses (ovsmesh-agent trace, run in the agent pod as kubectl exec " +
			"runs a command; it uses ovs-appctl ofproto/trace's simulation, nothing is sent) what obr0 does with it.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			cfg, err := r.kube.ToRESTConfig()
			if err != nil {
				return err
			}
			exec, err := podExec(cfg)
			if err != nil {
				return err
			}
			rep, err := runTrace(cmd.Context(), c, exec, r.namespace(), args[0], args[1])
			if err != nil {
				return err
			}
			return r.print(rep, func(w io.Writer, color bool) { WriteTrace(w, rep, color) })
		},
	}
}

// print writes rep as JSON or, through text, for a person.
func (r *root) print(rep any, text func(io.Writer, bool)) error {
	switch r.output {
	case OutputJSON:
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(r.env.Out, "%s\n", b)
		return err
	case OutputText, "":
		if r.color != ColorAuto && r.color != ColorAlways && r.color != ColorNever {
			return fmt.Errorf("--color must be auto, always or never, not %q", r.color)
		}
		text(r.env.Out, UseColor(r.color, r.env.Out, r.env.Getenv))
		return nil
	}
	return fmt.Errorf("-o must be text or json, not %q", r.output)
}

// namespace is -n if given: not the kubeconfig context's namespace, which is the user's
// working namespace and has nothing to do with where the operator runs.
func (r *root) namespace() string {
	if r.kube.Namespace != nil && *r.kube.Namespace != "" {
		return *r.kube.Namespace
	}
	return defaultNamespace
}

func (r *root) client() (client.Client, error) {
	cfg, err := r.kube.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: scheme()})
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Run is the plugin's main: it runs the command line args and returns the exit code.
func Run(ctx context.Context, env Env, args []string) int {
	cmd := NewCommand(env)
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(ctx); err != nil {
		return 1
	}
	return 0
}
