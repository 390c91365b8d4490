package ovs

import (
	"errors"
	"strings"
	"testing"

	libmodel "github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovsmesh/ovsmesh/ovs/model"
)

// TestTransactReportsFailedOperation: rejected transactions name the failing operation
// (or the commit), and commit nothing.
func TestTransactReportsFailedOperation(t *testing.T) {
	srv, c := startDB(t)
	ctx := testCtx(t)
	ensureBridge(t, c, BridgeSpec{Name: "obr0", Protocol: ProtocolSTP})
	srv.Vsctl("add-port", "obr0", "vethuser")
	waitCached(t, c, "vethuser")

	// An operation that fails on the server: a wait whose condition does not hold.
	portOps, err := c.EnsurePortOps(ctx, nil, "obr0", "vobr0", PortInternal)
	if err != nil {
		t.Fatal(err)
	}
	zero := 0
	wait := ovsdb.Operation{Op: ovsdb.OperationWait, Table: model.BridgeTable, Timeout: &zero,
		Where:   []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: "obr0"}},
		Columns: []string{"stp_enable"}, Until: string(ovsdb.WaitConditionEqual),
		Rows: []ovsdb.Row{{"stp_enable": false}}}
	ops := append([]ovsdb.Operation{portOps[0], wait}, portOps[1:]...)
	err = c.Transact(ctx, ops...)
	var te *TxnError
	if !errors.As(err, &te) || te.Index != 1 || te.Total != 4 || te.Kind != "timed out" {
		t.Fatalf("Transact(failing wait) = %v, want a TxnError for operation 1 of 4, timed out", err)
	}
	var timedOut *ovsdb.TimedOut
	if !errors.As(err, &timedOut) || timedOut.Operation() == nil || timedOut.Operation().Op != ovsdb.OperationWait {
		t.Errorf("Transact(failing wait) = %v (%T), does not unwrap to an *ovsdb.TimedOut of the wait", err, te.Err)
	}
	if !strings.Contains(err.Error(), "operation 1 of 4 failed (wait Bridge (name == obr0)): timed out") {
		t.Errorf("error text %q does not say which operation failed", err)
	}
	if _, err := srv.VsctlErr("get", "Port", "vobr0", "name"); err == nil {
		t.Errorf("port vobr0 exists after a failed transaction")
	}

	// A failure at commit: a port whose interface name is already used.
	dup := &model.Interface{UUID: "dupiface", Name: "vethuser"}
	p := &model.Port{UUID: "dupport", Name: "dup0", Interfaces: []string{"dupiface"}}
	br, err := c.bridge(ctx, "obr0")
	if err != nil || br == nil {
		t.Fatal(br, err)
	}
	ops, err = c.addPortsOps(br, []*model.Interface{dup}, []*model.Port{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Transact(ctx, ops...)
	if !errors.As(err, &te) || te.Index != -1 || te.Kind != "constraint violation" || !strings.Contains(te.Details, "vethuser") {
		t.Fatalf("Transact(duplicate interface) = %v, want a commit-time constraint violation naming vethuser", err)
	}
	var cv *ovsdb.ConstraintViolation
	if !errors.As(err, &cv) || !strings.Contains(cv.Error(), "vethuser") {
		t.Errorf("Transact(duplicate interface) = %v (%T), does not unwrap to an *ovsdb.ConstraintViolation", err, te.Err)
	}
	t.Logf("commit failure reads: %v", err)

	// A reference to a row that does not exist: Bridge.ports gets a made-up port UUID.
	target := &model.Bridge{UUID: br.UUID}
	ref, err := c.ovs.Where(target).Mutate(target, libmodel.Mutation{Field: &target.Ports,
		Mutator: ovsdb.MutateOperationInsert, Value: []string{"5d0b4a1c-0000-4000-8000-000000000001"}})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Transact(ctx, ref...)
	var riv *ovsdb.ReferentialIntegrityViolation
	if !errors.As(err, &riv) || !errors.As(err, &te) || te.Index != -1 || te.Kind != "referential integrity violation" {
		t.Fatalf("Transact(dangling port reference) = %v, want a commit-time *ovsdb.ReferentialIntegrityViolation", err)
	}
	if errors.Is(err, ErrUnavailable) || errors.As(err, &cv) {
		t.Errorf("Transact(dangling port reference) = %v also reads as unavailable or a constraint violation", err)
	}
	t.Logf("referential integrity failure reads: %v", err)

	// An operation that does not fit the schema never leaves the client.
	bad := ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: model.BridgeTable,
		Row: ovsdb.Row{"no_such_column": 1}, Where: wait.Where}
	err = c.Transact(ctx, portOps[0], bad)
	if !errors.As(err, &te) || te.Index != 1 || te.Kind != "invalid operation" || !errors.Is(err, ErrInvalidOperation) {
		t.Fatalf("Transact(bad column) = %v, want invalid operation at index 1", err)
	}

	// An operation aimed at a row that has gone.
	gone := &model.Bridge{UUID: "00000000-0000-0000-0000-000000000001"}
	upd, err := c.ovs.Where(gone).Update(gone, &gone.STPEnable)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Transact(ctx, upd...)
	if !errors.As(err, &te) || te.Kind != "no row matched" || !errors.Is(err, ErrRowGone) {
		t.Errorf("Transact(update of a missing row) = %v, want 'no row matched'", err)
	}
	if err := c.Transact(ctx); err != nil {
		t.Errorf("Transact() with no operations = %v", err)
	}
}

func TestResultErrorMapping(t *testing.T) {
	ops := []ovsdb.Operation{
		{Op: ovsdb.OperationInsert, Table: "Interface", Row: ovsdb.Row{"name": "gre-0a000001"}, UUIDName: "i1"},
		{Op: ovsdb.OperationMutate, Table: "Bridge", Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: "u-1"}}},
			Mutations: []ovsdb.Mutation{{Column: "ports", Mutator: ovsdb.MutateOperationInsert}}},
	}
	err := resultError(ops, []ovsdb.OperationResult{{}, {Error: "constraint violation", Details: "bad"}})
	want := "ovs: operation 1 of 2 failed (mutate Bridge (_uuid == u-1; mutate ports insert)): constraint violation: bad"
	if err == nil || err.Error() != want {
		t.Errorf("op failure:\n got %v\nwant %s", err, want)
	}
	err = resultError(ops, []ovsdb.OperationResult{{}, {}, {Error: "referential integrity violation", Details: "x"}})
	if err == nil || err.Error() != "ovs: transaction of 2 operations failed at commit: referential integrity violation: x" {
		t.Errorf("commit failure: %v", err)
	}
	var riv *ovsdb.ReferentialIntegrityViolation
	if !errors.As(err, &riv) {
		t.Errorf("commit failure %v does not unwrap to *ovsdb.ReferentialIntegrityViolation", err)
	}
	err = resultError(ops, []ovsdb.OperationResult{{}, {Error: "some new tag", Details: "y"}})
	var generic *ovsdb.Error
	if !errors.As(err, &generic) || generic.Operation() == nil || generic.Operation().Table != "Bridge" {
		t.Errorf("unknown tag %v does not unwrap to *ovsdb.Error of the failed operation", err)
	}
	if err := resultError(ops, []ovsdb.OperationResult{{}}); err == nil {
		t.Errorf("short result accepted")
	}
	if err := resultError(ops, []ovsdb.OperationResult{{}, {Count: 1}}); err != nil {
		t.Errorf("success reported as %v", err)
	}
	if got := describeOp(ops[0]); got != "insert into Interface (name=gre-0a000001; uuid-name=i1)" {
		t.Errorf("describeOp(insert) = %q", got)
	}
}
