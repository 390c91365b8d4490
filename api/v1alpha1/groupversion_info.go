// Package v1alpha1 contains the ovsmesh API: NetworkCluster (the whole configuration of the pod
// network, one per cluster) and NodeSubnet (one per node: its /24 of the cluster CIDR and the
// status its agent reports). Both are cluster-scoped.
//
// +kubebuilder:object:generate=true
// +groupName=network.ovsmesh.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is group version used to register these objects.
	GroupVersion = schema.GroupVersion{Group: "network.ovsmesh.io", Version: "v1alpha1"}

	// SchemeBuilder is used to add go types to the GroupVersionKind scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types in this group-version to the given scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
