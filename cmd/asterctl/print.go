package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	asterv1 "github.com/aster-proxy/aster/gen/aster/v1"
)

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func printList(w io.Writer, resp *asterv1.ListClustersResponse) {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tMODE\tLISTEN\tNODES\tUP\tVERSION\tLAST-REFRESH")
	for _, c := range resp.GetClusters() {
		up := 0
		for _, n := range c.GetNodes() {
			if n.GetState() == asterv1.NodeState_NODE_STATE_UP {
				up++
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", cell(c.GetName()), modeName(c.GetMode()), listen(c),
			len(c.GetNodes()), up, c.GetTableVersion(), refreshed(c))
	}
	tw.Flush()
}

func printCluster(w io.Writer, c *asterv1.Cluster) {
	tw := newTable(w)
	fmt.Fprintf(tw, "Name:\t%s\n", cell(c.GetName()))
	fmt.Fprintf(tw, "Mode:\t%s\n", modeName(c.GetMode()))
	fmt.Fprintf(tw, "Listen:\t%s\n", listen(c))
	fmt.Fprintf(tw, "Table version:\t%d\n", c.GetTableVersion())
	fmt.Fprintf(tw, "Last refresh:\t%s\n", refreshed(c))
	tw.Flush()
	fmt.Fprintln(w)
	if c.GetMode() == asterv1.Mode_MODE_SENTINEL {
		printGroups(w, c.GetNodes()...)
		return
	}
	printNodes(w, c.GetNodes()...)
}

// printGroups lists a Sentinel cluster's groups: each master (SINCE: since when it is the
// master), then its replicas.
func printGroups(w io.Writer, nodes ...*asterv1.Node) {
	tw := newTable(w)
	fmt.Fprintln(tw, "GROUP\tALIAS\tWEIGHT\tROLE\tADDRESS\tSTATE\tSINCE\tREASON")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", cell(n.GetGroup()), cell(n.GetAlias()), n.GetWeight(),
			roleName(n.GetRole()), cell(n.GetAddress()), stateName(n.GetState()), timeCell(n.GetStateSince()), cell(n.GetReason()))
	}
	tw.Flush()
}

func printNodes(w io.Writer, nodes ...*asterv1.Node) {
	tw := newTable(w)
	fmt.Fprintln(tw, "ADDRESS\tALIAS\tWEIGHT\tROLE\tSTATE\tSINCE\tSET-BY\tREASON\tSLOTS")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(n.GetAddress()), cell(n.GetAlias()), n.GetWeight(),
			roleName(n.GetRole()), stateName(n.GetState()), timeCell(n.GetStateSince()), cell(n.GetSetBy()), cell(n.GetReason()), slots(n.GetSlots()))
	}
	tw.Flush()
}

func printSlowLog(w io.Writer, r *asterv1.SlowLogResponse) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tDURATION\tCLIENT\tCOMMAND")
	for _, e := range r.GetEntries() {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.GetId(), e.GetTime().AsTime().UTC().Format(time.RFC3339),
			e.GetDuration().AsDuration(), cell(e.GetClient()), cell(strings.Join(e.GetArgs(), " ")))
	}
	tw.Flush()
}

func printHotKeys(w io.Writer, r *asterv1.HotKeysResponse) {
	tw := newTable(w)
	if !r.GetEnabled() {
		fmt.Fprintln(w, "sampling is off (HOTKEY ENABLE, or asterctl cluster config NAME hotkey-enabled yes)")
	}
	fmt.Fprintln(tw, "KEY\tCOUNT")
	for _, k := range r.GetKeys() {
		fmt.Fprintf(tw, "%s\t%d\n", cell(strconv.Quote(string(k.GetKey()))), k.GetCount())
	}
	tw.Flush()
}

func printKnobs(w io.Writer, knobs ...*asterv1.ConfigKnob) {
	tw := newTable(w)
	fmt.Fprintln(tw, "KNOB\tVALUE")
	for _, k := range knobs {
		fmt.Fprintf(tw, "%s\t%s\n", cell(k.GetName()), cell(k.GetValue()))
	}
	tw.Flush()
}

func printReload(w io.Writer, r *asterv1.ReloadResponse) {
	tw := newTable(w)
	for _, row := range []struct {
		label string
		names []string
	}{{"added:", r.GetAdded()}, {"removed:", r.GetRemoved()}, {"changed:", r.GetChanged()}, {"unchanged:", r.GetUnchanged()}} {
		fmt.Fprintf(tw, "%s\t%s\n", row.label, cell(strings.Join(row.names, ", ")))
	}
	fmt.Fprintf(tw, "config version:\t%d\n", r.GetConfigVersion())
	tw.Flush()
}

// cell makes s safe for one tabwriter cell: "-" when empty, no tabs or line breaks.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
}

func listen(c *asterv1.Cluster) string {
	if c.GetListenProto() == "unix" {
		return cell("unix:" + c.GetListenAddr())
	}
	return cell(c.GetListenAddr())
}

func refreshed(c *asterv1.Cluster) string { return timeCell(c.GetLastRefresh()) }

// timeCell renders a timestamp as RFC 3339 in UTC; "-" when unset.
func timeCell(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

func modeName(m asterv1.Mode) string {
	switch m {
	case asterv1.Mode_MODE_STANDALONE:
		return "standalone"
	case asterv1.Mode_MODE_REDIS_CLUSTER:
		return "redis_cluster"
	case asterv1.Mode_MODE_SENTINEL:
		return "redis_sentinel"
	}
	return "-"
}

func roleName(r asterv1.Role) string {
	switch r {
	case asterv1.Role_ROLE_NODE:
		return "node"
	case asterv1.Role_ROLE_MASTER:
		return "master"
	case asterv1.Role_ROLE_REPLICA:
		return "replica"
	}
	return "-"
}

func stateName(s asterv1.NodeState) string {
	switch s {
	case asterv1.NodeState_NODE_STATE_UP:
		return "UP"
	case asterv1.NodeState_NODE_STATE_EJECTED:
		return "EJECTED"
	case asterv1.NodeState_NODE_STATE_DOWN:
		return "DOWN"
	}
	return "-"
}

// slots renders ranges as "0-5460,7000"; "-" when there are none.
func slots(ranges []*asterv1.SlotRange) string {
	if len(ranges) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, r := range ranges {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(r.GetStart()), 10))
		if r.GetEnd() != r.GetStart() {
			b.WriteByte('-')
			b.WriteString(strconv.FormatUint(uint64(r.GetEnd()), 10))
		}
	}
	return b.String()
}
