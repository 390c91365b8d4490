package ovs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// TxnError is the error of a transaction ovsdb-server rejected, or that the client
// refused to send. It names the operation that failed, so a caller batching many
// operations learns which one and why, and it unwraps to the typed error, so
//
//	var cv *ovsdb.ConstraintViolation
//	errors.As(err, &cv)              // e.g. a duplicate port or interface name
//	errors.Is(err, ovs.ErrRowGone)   // a cached row vanished: run again
//
// work through it (and through the wrapping of the builders and SyncTunnels). A lost
// connection is not a TxnError: it wraps ErrUnavailable.
type TxnError struct {
	// Index of the failed operation in the transaction, or -1 when every operation
	// succeeded but the commit failed (constraint checks such as duplicate names or
	// referential integrity run at commit time).
	Index int
	// Total is the number of operations in the transaction.
	Total int
	// Op describes the failed operation ("insert into Interface (name=gre-0af40001)");
	// empty when Index is -1.
	Op string
	// Kind is the OVSDB error tag ("constraint violation", "referential integrity
	// violation", "timed out", ...) or the client's own ("no row matched", "invalid
	// operation"), and Details ovsdb-server's (or the client's) explanation.
	Kind, Details string
	// Err is what Unwrap returns: libovsdb's type for the OVSDB error
	// (*ovsdb.ConstraintViolation, *ovsdb.ReferentialIntegrityViolation, *ovsdb.TimedOut,
	// ... and *ovsdb.Error for a tag libovsdb does not know), ErrRowGone or
	// ErrInvalidOperation.
	Err error
}

// ErrRowGone is wrapped by a TxnError when an operation aimed at a row by its _uuid (as
// the builders make them from the cache) matched no row: the row was deleted after the
// cache was read. The rest of the transaction was committed; run again.
var ErrRowGone = errors.New("no row matched")

// ErrInvalidOperation is wrapped by a TxnError for an operation that does not fit the
// Open_vSwitch schema; such a transaction is never sent.
var ErrInvalidOperation = errors.New("invalid operation")

// Unwrap returns the typed error (see Err).
func (e *TxnError) Unwrap() error { return e.Err }

func (e *TxnError) Error() string {
	var b strings.Builder
	if e.Index < 0 {
		fmt.Fprintf(&b, "ovs: transaction of %d operations failed at commit: %s", e.Total, e.Kind)
	} else {
		fmt.Fprintf(&b, "ovs: operation %d of %d failed (%s): %s", e.Index, e.Total, e.Op, e.Kind)
	}
	if e.Details != "" {
		b.WriteString(": " + e.Details)
	}
	return b.String()
}

// Transact commits ops as one OVSDB transaction: all of them or none. It returns nil at
// once for no operations. A rejected transaction yields a *TxnError naming the failing
// operation. While the client reconnects, Transact waits (bounded by ctx; not at all with
// Options.FailFast); each round trip
// is bounded by 10 s, and one in flight when the connection is declared down ends at once
// with ErrUnavailable.
//
// Operations that target one row by _uuid (as the ...Ops builders produce from the
// cache) must match it: if that row vanished between reading the cache and committing,
// the rest of the transaction has been committed and Transact reports the stale
// operation, so a level-triggered caller simply runs again.
func (c *Client) Transact(ctx context.Context, ops ...ovsdb.Operation) error {
	_, err := c.transact(ctx, ops)
	return err
}

func (c *Client) transact(ctx context.Context, ops []ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	// libovsdb validates too, but only says "validation failed"; check op by op to say
	// which.
	schema := c.ovs.Schema()
	for i, op := range ops {
		if !schema.ValidateOperations(op) {
			return nil, &TxnError{Index: i, Total: len(ops), Op: describeOp(op),
				Kind: ErrInvalidOperation.Error(), Details: "does not match the Open_vSwitch schema", Err: ErrInvalidOperation}
		}
	}
	// libovsdb's own wait for a reconnect blocks on its lock for a whole connect attempt,
	// whatever the context says; this one does not.
	if err := c.waitConnected(ctx); err != nil {
		return nil, err
	}
	call, epoch, cancel := c.boundCall(ctx)
	defer cancel()
	start := time.Now()
	res, err := c.ovs.Transact(call, ops...)
	if err != nil {
		err = fmt.Errorf("ovs: transaction of %d operations: %w", len(ops), unavailable(ctx, epoch, err))
	} else if err = resultError(ops, res); err == nil {
		err = unmatchedError(ops, res)
	}
	if c.observe != nil {
		c.observe(len(ops), time.Since(start), err)
	}
	return res, err
}

// resultError maps OVSDB's per-operation results (RFC 7047 §4.1.3) back to the operation
// that failed.
func resultError(ops []ovsdb.Operation, res []ovsdb.OperationResult) error {
	for i, r := range res {
		if r.Error == "" {
			continue
		}
		if i >= len(ops) {
			return &TxnError{Index: -1, Total: len(ops), Kind: r.Error, Details: r.Details, Err: ovsdbError(nil, r)}
		}
		return &TxnError{Index: i, Total: len(ops), Op: describeOp(ops[i]), Kind: r.Error, Details: r.Details, Err: ovsdbError(&ops[i], r)}
	}
	if len(res) < len(ops) {
		return fmt.Errorf("ovs: transaction of %d operations returned only %d results", len(ops), len(res))
	}
	return nil
}

// ovsdbError returns libovsdb's typed error for a failed result: of the operation op, or of
// the commit when op is nil. libovsdb types results only in CheckOperationResults, which
// is given the one result (and its operation) here.
func ovsdbError(op *ovsdb.Operation, r ovsdb.OperationResult) error {
	res := []ovsdb.OperationResult{r}
	if op == nil {
		// A result beyond the operations is the commit's error.
		_, err := ovsdb.CheckOperationResults(res, nil)
		return err
	}
	errs, err := ovsdb.CheckOperationResults(res, []ovsdb.Operation{*op})
	if len(errs) == 1 {
		return errs[0]
	}
	return err
}

func unmatchedError(ops []ovsdb.Operation, res []ovsdb.OperationResult) error {
	for i, op := range ops {
		switch op.Op {
		case ovsdb.OperationUpdate, ovsdb.OperationMutate, ovsdb.OperationDelete:
		default:
			continue
		}
		if targetUUID(op) != "" && i < len(res) && res[i].Count == 0 {
			return &TxnError{Index: i, Total: len(ops), Op: describeOp(op), Kind: ErrRowGone.Error(),
				Details: "the row was deleted after the cache was read; the other operations were committed, run again", Err: ErrRowGone}
		}
	}
	return nil
}

// targetUUID returns X when op's condition is exactly `_uuid == X`.
func targetUUID(op ovsdb.Operation) string {
	if len(op.Where) != 1 {
		return ""
	}
	w := op.Where[0]
	if w.Column != "_uuid" || w.Function != ovsdb.ConditionEqual {
		return ""
	}
	switch v := w.Value.(type) {
	case ovsdb.UUID:
		return v.GoUUID
	case string:
		return v
	}
	return ""
}

// describeOp renders an operation for error messages: kind, table, and what identifies
// the row (its name, uuid-name or condition).
func describeOp(op ovsdb.Operation) string {
	var b strings.Builder
	switch op.Op {
	case ovsdb.OperationInsert:
		fmt.Fprintf(&b, "insert into %s", op.Table)
	case ovsdb.OperationSelect, ovsdb.OperationDelete:
		fmt.Fprintf(&b, "%s from %s", op.Op, op.Table)
	default:
		fmt.Fprintf(&b, "%s %s", op.Op, op.Table)
	}
	var id []string
	if name, ok := op.Row["name"].(string); ok {
		id = append(id, "name="+name)
	}
	if op.UUIDName != "" {
		id = append(id, "uuid-name="+op.UUIDName)
	}
	for _, w := range op.Where {
		id = append(id, fmt.Sprintf("%s %s %v", w.Column, w.Function, condValue(w.Value)))
	}
	if len(op.Mutations) > 0 {
		var ms []string
		for _, m := range op.Mutations {
			ms = append(ms, m.Column+" "+string(m.Mutator))
		}
		id = append(id, "mutate "+strings.Join(ms, ", "))
	}
	if len(id) > 0 {
		b.WriteString(" (" + strings.Join(id, "; ") + ")")
	}
	return b.String()
}

func condValue(v any) any {
	if u, ok := v.(ovsdb.UUID); ok {
		return u.GoUUID
	}
	return v
}
