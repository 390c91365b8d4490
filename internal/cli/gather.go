package cli

import (
	"context"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// Reading is best effort: the NodeSubnets are the one thing status cannot do without; every
// other read that fails is noted (unreadable) and the report says unknown where it depends
// on it. A user with read access to the cluster-scoped API but not to the operator's
// namespace still gets the matrix.

// gatherStatus reads what status shows.
func gatherStatus(ctx context.Context, c client.Reader, namespace string) (StatusInput, error) {
	var in StatusInput
	in.Cluster = getCluster(ctx, c, &in.Unreadable)
	var subnets v1alpha1.NodeSubnetList
	if err := c.List(ctx, &subnets); err != nil {
		return in, fmt.Errorf("listing NodeSubnets: %w", err)
	}
	in.Subnets = subnets.Items
	var leases coordinationv1.LeaseList
	err := c.List(ctx, &leases, client.InNamespace(namespace), client.MatchingLabels{v1alpha1.LabelHeartbeat: "true"})
	if err != nil {
		in.Unreadable = append(in.Unreadable, unreadable("heartbeat Leases in namespace "+namespace, err))
	} else {
		in.Leases, in.LeasesRead = leases.Items, true
	}
	return in, nil
}

// gatherDiagnose reads what diagnose shows about node.
func gatherDiagnose(ctx context.Context, c client.Reader, namespace, node string) (DiagnoseInput, error) {
	in := DiagnoseInput{Node: node}
	note := func(what string, err error) { in.Unreadable = append(in.Unreadable, unreadable(what, err)) }
	in.Cluster = getCluster(ctx, c, &in.Unreadable)

	var n corev1.Node
	switch err := c.Get(ctx, client.ObjectKey{Name: node}, &n); {
	case err == nil:
		in.NodeFound = true
	case !apierrors.IsNotFound(err):
		note("Node "+node, err)
	}
	var subnets v1alpha1.NodeSubnetList
	if err := c.List(ctx, &subnets); err != nil {
		return in, fmt.Errorf("listing NodeSubnets: %w", err)
	}
	in.Subnets = subnets.Items
	for i := range subnets.Items {
		if subnets.Items[i].Name == node {
			in.Subnet = &subnets.Items[i]
		}
	}
	if !in.NodeFound && in.Subnet == nil && len(in.Unreadable) == 0 {
		return in, fmt.Errorf("no Node or NodeSubnet named %q", node)
	}

	var l coordinationv1.Lease
	switch err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: v1alpha1.HeartbeatLeaseName(node)}, &l); {
	case err == nil:
		in.Lease, in.LeaseRead = &l, true
	case apierrors.IsNotFound(err):
		in.LeaseRead = true
	default:
		note("heartbeat Lease "+namespace+"/"+v1alpha1.HeartbeatLeaseName(node), err)
	}

	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabels{labelName: agentName},
		client.MatchingFields{"spec.nodeName": node}); err != nil {
		note("agent pods in namespace "+namespace, err)
	} else {
		in.Pods = pods.Items
	}

	evs, err := nodeEvents(ctx, c, node)
	if err != nil {
		note("Events in namespace "+metav1.NamespaceDefault, err)
	}
	in.Events = evs
	return in, nil
}

// nodeEvents lists the Events regarding node's Node or NodeSubnet. Both are cluster-scoped,
// so their Events are in the default namespace; the field selector keeps a busy default
// namespace from being listed whole. BuildDiagnose filters by kind.
func nodeEvents(ctx context.Context, c client.Reader, node string) ([]eventsv1.Event, error) {
	var evs eventsv1.EventList
	err := c.List(ctx, &evs, client.InNamespace(metav1.NamespaceDefault),
		client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("regarding.name", node)})
	return evs.Items, err
}

func getCluster(ctx context.Context, c client.Reader, unread *[]string) *v1alpha1.NetworkCluster {
	var nc v1alpha1.NetworkCluster
	switch err := c.Get(ctx, client.ObjectKey{Name: v1alpha1.NetworkClusterName}, &nc); {
	case err == nil:
		return &nc
	case !apierrors.IsNotFound(err):
		*unread = append(*unread, unreadable("NetworkCluster "+v1alpha1.NetworkClusterName, err))
	}
	return nil
}

// unreadable names what could not be read, saying "no permission" plainly when that is why.
func unreadable(what string, err error) string {
	if apierrors.IsForbidden(err) {
		return what + ": forbidden (your user may not read them)"
	}
	return what + ": " + err.Error()
}
