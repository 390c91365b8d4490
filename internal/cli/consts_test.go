package cli

import (
	"testing"

	"github.com/ovsmesh/ovsmesh/agent"
	"github.com/ovsmesh/ovsmesh/controllers"
)

// The plugin copies these rather than importing agent and controllers (see agentconsts.go);
// this holds the copies to the originals.
func TestCopiedConstants(t *testing.T) {
	for _, c := range []struct{ name, copy, orig string }{
		{"ReasonApplied", reasonApplied, agent.ReasonApplied},
		{"ReasonOVSUnavailable", reasonOVSUnavailable, agent.ReasonOVSUnavailable},
		{"ReasonVswitchdUnavailable", reasonVswitchdUnavailable, agent.ReasonVswitchdUnavailable},
		{"ReasonOVSError", reasonOVSError, agent.ReasonOVSError},
		{"ReasonCNIConfigError", reasonCNIConfigError, agent.ReasonCNIConfigError},
		{"ReasonInvalidConfig", reasonInvalidConfig, agent.ReasonInvalidConfig},
		{"EventDriftRepaired", eventDriftRepaired, agent.EventDriftRepaired},
		{"DefaultNamespace", defaultNamespace, controllers.DefaultNamespace},
		{"LabelName", labelName, controllers.LabelName},
		{"AgentName", agentName, controllers.AgentName},
		{"AgentBinary", agentBinary, controllers.AgentBinary},
	} {
		if c.copy != c.orig {
			t.Errorf("%s: the plugin has %q, the original is %q", c.name, c.copy, c.orig)
		}
	}
	if overheadGRE != agent.OverheadGRE || overheadVXLAN != agent.OverheadVXLAN {
		t.Errorf("overheads GRE %d VXLAN %d, the agent's are %d and %d", overheadGRE, overheadVXLAN, agent.OverheadGRE, agent.OverheadVXLAN)
	}
}
