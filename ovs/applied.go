package ovs

import (
	"context"
	"fmt"
	"time"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	ovsmodel "github.com/ovsmesh/ovsmesh/ovs/model"
)

// WaitApplied returns once ovs-vswitchd has applied everything committed before the call,
// the way ovs-vsctl waits unless given --no-wait: it increments Open_vSwitch next_cfg and
// polls until ovs-vswitchd, which copies next_cfg to cur_cfg after every reconfiguration,
// reports that value or a later one. The database alone cannot say when a change reaches
// the data path; this can. Bounded by ctx: with no ovs-vswitchd running it never returns
// nil.
//
// cur_cfg is read by polling (every 20 ms) rather than monitored, so that ovs-vswitchd's
// cfg counter updates, which every ovs-vsctl command causes, do not wake the client.
func (c *Client) WaitApplied(ctx context.Context) error {
	if err := c.waitConnected(ctx); err != nil {
		return err
	}
	root, err := c.rootRow(ctx)
	if err != nil {
		return err
	}
	if root == nil {
		return fmt.Errorf("ovs: wait for ovs-vswitchd: the database has no Open_vSwitch row")
	}
	bump, err := c.ovs.Where(root).Mutate(root, model.Mutation{Field: &root.NextCfg, Mutator: ovsdb.MutateOperationAdd, Value: 1})
	if err != nil {
		return fmt.Errorf("ovs: wait for ovs-vswitchd: %w", err)
	}
	// The select in the same transaction reads the value this increment produced, even
	// when another client increments concurrently.
	res, err := c.transact(ctx, append(bump, selectCfg(root.UUID)))
	if err != nil {
		return fmt.Errorf("ovs: wait for ovs-vswitchd: %w", err)
	}
	target, ok := cfgOf(res[len(res)-1], "next_cfg")
	if !ok {
		return fmt.Errorf("ovs: wait for ovs-vswitchd: no next_cfg in %+v", res[len(res)-1])
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		res, err := c.transact(ctx, []ovsdb.Operation{selectCfg(root.UUID)})
		switch {
		case err != nil && ctx.Err() == nil:
			return fmt.Errorf("ovs: wait for ovs-vswitchd: %w", err)
		case err == nil:
			if cur, ok := cfgOf(res[0], "cur_cfg"); ok && cur >= target {
				return nil
			}
		} // else ctx ended during the read: reported below
		select {
		case <-ctx.Done():
			return fmt.Errorf("ovs: ovs-vswitchd has not applied configuration %d: %w", target, ctx.Err())
		case <-t.C:
		}
	}
}

func selectCfg(rootUUID string) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationSelect, Table: ovsmodel.OpenvSwitchTable,
		Where:   []ovsdb.Condition{ovsdb.NewCondition("_uuid", ovsdb.ConditionEqual, ovsdb.UUID{GoUUID: rootUUID})},
		Columns: []string{"cur_cfg", "next_cfg"}}
}

// cfgOf reads an integer column of the one row a select returned (JSON numbers arrive as
// float64).
func cfgOf(r ovsdb.OperationResult, col string) (int64, bool) {
	if len(r.Rows) != 1 {
		return 0, false
	}
	switch v := r.Rows[0][col].(type) {
	case float64:
		return int64(v), true
	case int:
		return int64(v), true
	case int64:
		return v, true
	}
	return 0, false
}
