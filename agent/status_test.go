package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/hostnet"
)

func TestReadyStatus(t *testing.T) {
	s, err := Desired(defaultSpec(), threeNodes(), "n1", 1500)
	if err != nil {
		t.Fatal(err)
	}
	r := Result{TunnelCount: 2, Peers: []v1alpha1.PeerStatus{
		{NodeName: "n2", NodeIP: "172.30.0.2", Port: "gre-ac1e0002", State: v1alpha1.PeerUp, STPState: "forwarding"},
		{NodeName: "n3", NodeIP: "172.30.0.3", Port: "gre-ac1e0003", State: v1alpha1.PeerDown, STPState: "blocking"},
	}}
	old := v1alpha1.NodeSubnetStatus{Conditions: []metav1.Condition{
		{Type: v1alpha1.ConditionCleanedUp, Status: metav1.ConditionTrue, Reason: ReasonCleanedUp},
	}}
	st := readyStatus(old, 7, s, r)
	if st.ObservedGeneration != 7 || st.TunnelCount != 2 || st.MTU != 1458 || !reflect.DeepEqual(st.Peers, r.Peers) {
		t.Errorf("status = %+v", st)
	}
	c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonApplied ||
		c.Message != "2 gre tunnels on obr0, MTU 1458, BFD: 1/2 peers up" || c.ObservedGeneration != 7 {
		t.Errorf("Ready = %+v", c)
	}
	if meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionCleanedUp) != nil {
		t.Error("CleanedUp kept on an active node")
	}
	if len(old.Conditions) != 1 || old.Conditions[0].Type != v1alpha1.ConditionCleanedUp {
		t.Error("readyStatus modified its input")
	}
	// Same inputs → same status, so the reconciler's DeepEqual skips the patch.
	if again := readyStatus(st, 7, s, r); !reflect.DeepEqual(again, st) {
		t.Errorf("not stable:\n%+v\n%+v", st, again)
	}
}

func TestReadyWaitsForSpanningTree(t *testing.T) {
	s, err := Desired(defaultSpec(), threeNodes(), "n1", 1500)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		states []string
		ready  metav1.ConditionStatus
	}{
		{[]string{"forwarding", "blocking"}, metav1.ConditionTrue},
		{[]string{"forwarding", "discarding"}, metav1.ConditionTrue},
		{[]string{"forwarding", "learning"}, metav1.ConditionFalse},
		{[]string{"listening", "listening"}, metav1.ConditionFalse},
		{[]string{"forwarding", ""}, metav1.ConditionFalse},
	} {
		r := Result{TunnelCount: 2, Peers: []v1alpha1.PeerStatus{
			{NodeName: "n2", NodeIP: "172.30.0.2", Port: "gre-ac1e0002", State: v1alpha1.PeerUnknown, STPState: tc.states[0]},
			{NodeName: "n3", NodeIP: "172.30.0.3", Port: "gre-ac1e0003", State: v1alpha1.PeerUnknown, STPState: tc.states[1]},
		}}
		c := meta.FindStatusCondition(readyStatus(v1alpha1.NodeSubnetStatus{}, 1, s, r).Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != tc.ready {
			t.Errorf("ports %v: Ready = %+v, want %s", tc.states, c, tc.ready)
		}
		if tc.ready == metav1.ConditionFalse && c.Reason != ReasonSpanningTreeConverging {
			t.Errorf("ports %v: reason %q, want %s", tc.states, c.Reason, ReasonSpanningTreeConverging)
		}
	}
}

func TestNotReadyStatusCarriesReason(t *testing.T) {
	for _, tc := range []struct {
		err    error
		reason string
	}{
		{withReason(ReasonNoUnderlay, fmt.Errorf("x: %w", hostnet.ErrNoUnderlay)), ReasonNoUnderlay},
		{withReason(ReasonHostConflict, &hostnet.ConflictError{Link: "kbr0", What: "has 10.9.9.1/24"}), ReasonHostConflict},
		{withReason(ReasonOVSUnavailable, errors.New("socket missing")), ReasonOVSUnavailable},
		{errors.New("unclassified"), ReasonHostError},
	} {
		st := notReadyStatus(v1alpha1.NodeSubnetStatus{MTU: 1450}, 3, tc.err)
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != tc.reason || c.Message != tc.err.Error() {
			t.Errorf("%v: Ready = %+v", tc.err, c)
		}
		if st.MTU != 1450 {
			t.Error("notReadyStatus dropped what is still on the node")
		}
	}
}

func TestCleanedStatus(t *testing.T) {
	st := cleanedStatus(v1alpha1.NodeSubnetStatus{TunnelCount: 2, MTU: 1450, Peers: []v1alpha1.PeerStatus{{NodeName: "n2"}}}, 4, nil)
	c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionCleanedUp)
	if c == nil || c.Status != metav1.ConditionTrue || st.TunnelCount != 0 || st.Peers != nil || st.MTU != 0 {
		t.Errorf("status = %+v", st)
	}
	if r := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); r == nil || r.Status != metav1.ConditionFalse || r.Reason != ReasonTornDown {
		t.Errorf("Ready = %+v", r)
	}
	st = cleanedStatus(v1alpha1.NodeSubnetStatus{}, 4, errors.New("boom"))
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionCleanedUp); c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonCleanupFailed {
		t.Errorf("CleanedUp on failure = %+v", c)
	}
}

func TestRenderCNI(t *testing.T) {
	s, err := Desired(defaultSpec(), threeNodes(), "n2", 1500)
	if err != nil {
		t.Fatal(err)
	}
	b, err := renderCNI(s.CNI, "/var/lib/ovsmesh/ipam")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"cniVersion": "1.0.0", "name": "ovsmesh",
		"plugins": []any{
			map[string]any{"type": "ovsmesh", "bridge": "kbr0", "mtu": 1458.0, "ipam": map[string]any{
				"type":    "host-local",
				"ranges":  []any{[]any{map[string]any{"subnet": "10.244.2.0/24", "gateway": "10.244.2.1"}}},
				"routes":  []any{map[string]any{"dst": "10.244.0.0/16"}, map[string]any{"dst": "0.0.0.0/0"}},
				"dataDir": "/var/lib/ovsmesh/ipam",
			}},
			map[string]any{"type": "portmap", "capabilities": map[string]any{"portMappings": true}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("conflist:\n%s", b)
	}
	if _, err := renderCNI(CNIConfig{}, ""); err == nil {
		t.Error("empty config rendered")
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net.d") // created on first write
	changed, err := writeFileAtomic(dir, CNIConfFile, []byte("a\n"))
	if err != nil || !changed {
		t.Fatalf("first write: %v %v", changed, err)
	}
	target := filepath.Join(dir, CNIConfFile)
	fi1, _ := os.Stat(target)
	time.Sleep(10 * time.Millisecond)
	if changed, err = writeFileAtomic(dir, CNIConfFile, []byte("a\n")); err != nil || changed {
		t.Fatalf("same content: changed=%v err=%v, want no write", changed, err)
	}
	fi2, _ := os.Stat(target)
	if !fi1.ModTime().Equal(fi2.ModTime()) || !os.SameFile(fi1, fi2) {
		t.Error("unchanged content rewrote the file")
	}
	if changed, err = writeFileAtomic(dir, CNIConfFile, []byte("b\n")); err != nil || !changed {
		t.Fatalf("new content: %v %v", changed, err)
	}
	b, _ := os.ReadFile(target)
	fi3, _ := os.Stat(target)
	if string(b) != "b\n" || fi3.Mode().Perm() != 0o644 || os.SameFile(fi2, fi3) {
		t.Errorf("after rewrite: %q %v (renamed over: %v)", b, fi3.Mode(), !os.SameFile(fi2, fi3))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp files left: %v", entries)
	}
	if removed, err := removeFile(dir, CNIConfFile); err != nil || !removed {
		t.Errorf("remove: %v %v", removed, err)
	}
	if removed, err := removeFile(dir, CNIConfFile); err != nil || removed {
		t.Errorf("second remove: %v %v", removed, err)
	}
}
