package controllers

import (
	"slices"
	"testing"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// TestAgentDaemonSetMetricsPort: the agents' metrics port is the operator's to choose
// (--agent-metrics-port), and off means no endpoint and no declared port: an agent whose port
// a node already uses would not start.
func TestAgentDaemonSetMetricsPort(t *testing.T) {
	nc := &v1alpha1.NetworkCluster{}
	nc.Name = v1alpha1.NetworkClusterName
	for _, tc := range []struct {
		opts     Options
		wantArg  string
		wantPort int32
	}{
		{Options{}, "--metrics-bind-address=:9474", 9474},
		{Options{AgentMetricsPort: 9555}, "--metrics-bind-address=:9555", 9555},
		{Options{AgentMetricsPort: -1}, "--metrics-bind-address=0", 0},
	} {
		o := tc.opts.withDefaults()
		ds := agentDaemonSet(nc, o.Namespace, o.AgentMetricsPort)
		var agent *struct {
			cmd   []string
			ports []int32
		}
		for _, c := range ds.Spec.Template.Spec.Containers {
			if c.Name != nil && *c.Name == "agent" {
				agent = &struct {
					cmd   []string
					ports []int32
				}{cmd: c.Command}
				for _, p := range c.Ports {
					agent.ports = append(agent.ports, *p.ContainerPort)
				}
			}
		}
		if agent == nil {
			t.Fatal("no agent container")
		}
		if !slices.Contains(agent.cmd, tc.wantArg) {
			t.Errorf("port %d: command %v, want %s", tc.opts.AgentMetricsPort, agent.cmd, tc.wantArg)
		}
		switch {
		case tc.wantPort == 0 && len(agent.ports) != 0:
			t.Errorf("metrics off: ports %v declared", agent.ports)
		case tc.wantPort != 0 && !slices.Equal(agent.ports, []int32{tc.wantPort}):
			t.Errorf("port %d: ports %v, want [%d]", tc.opts.AgentMetricsPort, agent.ports, tc.wantPort)
		}
	}
}
