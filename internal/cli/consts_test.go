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
}
