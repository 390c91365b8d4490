package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// reporter writes what the agent says about its node: the NodeSubnet status and the Node's
// NetworkUnavailable condition derived from it. It is the only writer of either, for the
// reconcile loop (once per pass, deferred) and for the cleanup subcommand alike.
type reporter struct {
	client   client.Client
	nodeName string
	log      logr.Logger
}

// report writes st into the NodeSubnet's status subresource when it differs, and the Node
// condition it implies. A merge patch carries only the status, so it cannot clobber the
// operator's spec writes. A NodeSubnet deleted meanwhile is not an error.
func (p reporter) report(ctx context.Context, own *v1alpha1.NodeSubnet, st v1alpha1.NodeSubnetStatus) error {
	if err := p.markNode(ctx, st); err != nil {
		// The Node condition is for the scheduler; the NodeSubnet status is written anyway.
		p.log.Error(err, "setting the Node condition")
	}
	if reflect.DeepEqual(own.Status, st) {
		return nil
	}
	updated := own.DeepCopy()
	updated.Status = st
	ctx, cancel := apiCtx(ctx)
	defer cancel()
	if err := p.client.Status().Patch(ctx, updated, client.MergeFrom(own)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("patching NodeSubnet %s status: %w", own.Name, err)
	}
	return nil
}

// markNode writes the NetworkUnavailable condition for st into this node's Node when it
// differs (status, reason or message) from the one there: a strategic merge patch of that
// one condition (Node conditions merge by type), so the kubelet's are untouched.
func (p reporter) markNode(ctx context.Context, st v1alpha1.NodeSubnetStatus) error {
	var node corev1.Node
	if err := p.client.Get(ctx, types.NamespacedName{Name: p.nodeName}, &node); err != nil {
		return client.IgnoreNotFound(err)
	}
	want := nodeNetworkCondition(st, metav1.Now())
	for _, c := range node.Status.Conditions {
		if c.Type != corev1.NodeNetworkUnavailable {
			continue
		}
		if c.Status == want.Status && c.Reason == want.Reason && c.Message == want.Message {
			return nil
		}
		if c.Status == want.Status {
			want.LastTransitionTime = c.LastTransitionTime
		}
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{want}}})
	if err != nil {
		return err
	}
	ctx, cancel := apiCtx(ctx)
	defer cancel()
	if err := p.client.Status().Patch(ctx, &node, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("Node %s condition %s: %w", p.nodeName, corev1.NodeNetworkUnavailable, err)
	}
	return nil
}

// markNodeRemoved sets NetworkUnavailable=True OvsmeshRemoved: the node left the mesh.
func (p reporter) markNodeRemoved(ctx context.Context) {
	st := v1alpha1.NodeSubnetStatus{Conditions: []metav1.Condition{{Type: v1alpha1.ConditionCleanedUp, Status: metav1.ConditionTrue}}}
	if err := p.markNode(ctx, st); err != nil {
		p.log.Error(err, "setting the Node condition")
	}
}

// ReportCleanedUp patches the CleanedUp condition (True, or False with err) into the
// NodeSubnet of nodeName: what the teardown request reports, for the cleanup subcommand.
func ReportCleanedUp(ctx context.Context, c client.Client, nodeName string, generation int64, err error) error {
	var own v1alpha1.NodeSubnet
	if gerr := c.Get(ctx, types.NamespacedName{Name: nodeName}, &own); gerr != nil {
		return gerr
	}
	return reporter{client: c, nodeName: nodeName, log: logr.Discard()}.report(ctx, &own, cleanedStatus(own.Status, generation, err))
}
