package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// NodeSelectorOf returns the selector of the nodes in the mesh (empty selects every node).
func (s *NetworkClusterSpec) NodeSelectorOf() labels.Selector {
	return labels.SelectorFromSet(s.NodeSelector)
}

// InMesh reports whether node belongs in the mesh that sel (NodeSelectorOf) selects: it
// matches and is not being deleted. The operator allocates subnets by it; an agent whose node
// no longer is in the mesh tears its data path down.
func InMesh(node *corev1.Node, sel labels.Selector) bool {
	return node.DeletionTimestamp == nil && sel.Matches(labels.Set(node.Labels))
}
