package hostnet

import (
	"fmt"
	"net"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

const nftChain = "postrouting"

// masqComment identifies the one rule ovsmesh keeps; it embeds the CIDR, so a rule written
// for another CIDR does not match and is replaced. `nft list table ip ovsmesh` shows it.
func masqComment(m Masquerade) string {
	return fmt.Sprintf("ovsmesh: masquerade pods of %s leaving it", m.ClusterCIDR)
}

// EnsureMasquerade implements Interface.
func (h *Host) EnsureMasquerade(m Masquerade) ([]string, error) {
	c, err := h.nft()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	exists, ok, err := h.masqueradeMatches(c, m)
	if err != nil {
		return nil, err
	}
	table := &nftables.Table{Name: NFTTable, Family: nftables.TableFamilyIPv4}
	switch {
	case !m.Enabled && !exists:
		return nil, nil
	case !m.Enabled:
		c.DelTable(table)
		if err := c.Flush(); err != nil {
			return nil, fmt.Errorf("deleting table ip %s: %w", NFTTable, err)
		}
		return []string{fmt.Sprintf("nftables: deleted table ip %s (masquerade disabled)", NFTTable)}, nil
	case ok:
		return nil, nil
	}

	// One batch, applied atomically by the kernel: the old table (if any) and the new one
	// never coexist and there is no instant without masquerading.
	if exists {
		c.DelTable(table)
	}
	c.AddTable(table)
	chain := c.AddChain(&nftables.Chain{
		Name:     nftChain,
		Table:    table,
		Type:     nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookPostrouting,
		Priority: nftables.ChainPriorityNATSource,
	})
	c.AddRule(&nftables.Rule{
		Table:    table,
		Chain:    chain,
		Exprs:    masqExprs(m),
		UserData: userdata.AppendString(nil, userdata.TypeComment, masqComment(m)),
	})
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("writing table ip %s: %w", NFTTable, err)
	}
	verb := "created"
	if exists {
		verb = "replaced"
	}
	return []string{fmt.Sprintf("nftables: %s table ip %s (%s)", verb, NFTTable, masqComment(m))}, nil
}

// masqueradeMatches reports whether the table exists and whether it is exactly what m wants:
// one NAT postrouting chain at srcnat priority with one rule carrying m's comment.
func (h *Host) masqueradeMatches(c *nftables.Conn, m Masquerade) (exists, ok bool, err error) {
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return false, false, fmt.Errorf("listing nftables tables: %w", err)
	}
	var table *nftables.Table
	for _, t := range tables {
		if t.Name == NFTTable {
			table = t
		}
	}
	if table == nil {
		return false, false, nil
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return true, false, fmt.Errorf("listing nftables chains: %w", err)
	}
	var mine []*nftables.Chain
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == NFTTable {
			mine = append(mine, ch)
		}
	}
	if len(mine) != 1 {
		return true, false, nil
	}
	ch := mine[0]
	if ch.Name != nftChain || ch.Type != nftables.ChainTypeNAT || ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookPostrouting ||
		ch.Priority == nil || *ch.Priority != *nftables.ChainPriorityNATSource {
		return true, false, nil
	}
	rules, err := c.GetRules(table, ch)
	if err != nil {
		return true, false, fmt.Errorf("listing rules of ip %s %s: %w", NFTTable, nftChain, err)
	}
	if len(rules) != 1 {
		return true, false, nil
	}
	comment, _ := userdata.GetString(rules[0].UserData, userdata.TypeComment)
	return true, comment == masqComment(m), nil
}

// masqExprs is `ip saddr CIDR ip daddr != CIDR masquerade`.
func masqExprs(m Masquerade) []expr.Any {
	addr := m.ClusterCIDR.Addr().As4()
	mask := net.CIDRMask(m.ClusterCIDR.Bits(), 32)
	match := func(offset uint32, op expr.CmpOp) []expr.Any {
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
			&expr.Cmp{Op: op, Register: 1, Data: addr[:]},
		}
	}
	var e []expr.Any
	e = append(e, match(12, expr.CmpOpEq)...)  // ip saddr
	e = append(e, match(16, expr.CmpOpNeq)...) // ip daddr
	return append(e, &expr.Masq{})
}
