package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	asterv1 "github.com/aster-proxy/aster/gen/aster/v1"
)

// cmdFlags are the flags of cluster subcommands.
type cmdFlags struct {
	reason string // eject --reason
	count  int    // slowlog, hotkeys -n
	client bool   // version --client
}

// command is one admin call: a "cluster" subcommand, or version.
type command struct {
	short, long string
	args        []string // names of the positional arguments
	opt         []string // names of optional positional arguments after args
	call        func(ctx context.Context, c asterv1.AdminServiceClient, args []string, f cmdFlags) (proto.Message, error)
	print       func(w io.Writer, m proto.Message)
	// json is the value -o json prints for the reply (see json.go).
	json func(m proto.Message) any
	// failed, when set, prints what is worth printing when the call failed.
	failed func(w io.Writer)
}

// commandOrder is the order of the cluster subcommands in help.
var commandOrder = []string{"list", "show", "reload", "eject", "restore", "slowlog", "hotkeys", "config"}

var commands = map[string]command{
	"list": {
		short: "List clusters",
		long:  "List every cluster with its node counts and routing table version.",
		call: func(ctx context.Context, c asterv1.AdminServiceClient, _ []string, _ cmdFlags) (proto.Message, error) {
			return c.ListClusters(ctx, &asterv1.ListClustersRequest{})
		},
		print: func(w io.Writer, m proto.Message) { printList(w, m.(*asterv1.ListClustersResponse)) },
		json:  func(m proto.Message) any { return listJSON(m.(*asterv1.ListClustersResponse)) },
	},
	"show": {
		short: "Show a cluster and its nodes",
		long:  "Show a cluster and the state of each of its nodes.",
		args:  []string{"NAME"},
		call: func(ctx context.Context, c asterv1.AdminServiceClient, a []string, _ cmdFlags) (proto.Message, error) {
			return c.GetCluster(ctx, &asterv1.GetClusterRequest{Name: a[0]})
		},
		print: func(w io.Writer, m proto.Message) { printCluster(w, m.(*asterv1.GetClusterResponse).GetCluster()) },
		json: func(m proto.Message) any {
			return map[string]any{"cluster": clusterJSON(m.(*asterv1.GetClusterResponse).GetCluster())}
		},
	},
	"reload": {
		short: "Re-read asterd's configuration file and apply it",
		long:  "Re-read asterd's configuration file and apply the difference live.\nA configuration that fails validation is refused and nothing changes.",
		call: func(ctx context.Context, c asterv1.AdminServiceClient, _ []string, _ cmdFlags) (proto.Message, error) {
			return c.Reload(ctx, &asterv1.ReloadRequest{})
		},
		print: func(w io.Writer, m proto.Message) { printReload(w, m.(*asterv1.ReloadResponse)) },
		json:  func(m proto.Message) any { return reloadJSON(m.(*asterv1.ReloadResponse)) },
	},
	"eject": {
		short: "Take a node out of routing until restored",
		long:  "Take NODE (alias or host:port) of cluster NAME out of routing until it is restored;\nhealth checks do not undo it.",
		args:  []string{"NAME", "NODE"},
		call: func(ctx context.Context, c asterv1.AdminServiceClient, a []string, f cmdFlags) (proto.Message, error) {
			return c.EjectNode(ctx, &asterv1.EjectNodeRequest{Cluster: a[0], Node: a[1], Reason: f.reason})
		},
		print: func(w io.Writer, m proto.Message) { printNodes(w, m.(*asterv1.EjectNodeResponse).GetNode()) },
		json: func(m proto.Message) any {
			return map[string]any{"node": nodeJSON(m.(*asterv1.EjectNodeResponse).GetNode())}
		},
	},
	"restore": {
		short: "Put an ejected node back into routing",
		long:  "Put NODE (alias or host:port) of cluster NAME back into routing.",
		args:  []string{"NAME", "NODE"},
		call: func(ctx context.Context, c asterv1.AdminServiceClient, a []string, _ cmdFlags) (proto.Message, error) {
			return c.RestoreNode(ctx, &asterv1.RestoreNodeRequest{Cluster: a[0], Node: a[1]})
		},
		print: func(w io.Writer, m proto.Message) { printNodes(w, m.(*asterv1.RestoreNodeResponse).GetNode()) },
		json: func(m proto.Message) any {
			return map[string]any{"node": nodeJSON(m.(*asterv1.RestoreNodeResponse).GetNode())}
		},
	},
	"slowlog": {
		short: "Show a cluster's slowest recent commands",
		long:  "Show cluster NAME's slowest recent commands, newest first (slowlog_log_slower_than,\nslowlog_max_len).",
		args:  []string{"NAME"},
		call: func(ctx context.Context, c asterv1.AdminServiceClient, a []string, f cmdFlags) (proto.Message, error) {
			return c.SlowLog(ctx, &asterv1.SlowLogRequest{Cluster: a[0], Count: int32(f.count)})
		},
		print: func(w io.Writer, m proto.Message) { printSlowLog(w, m.(*asterv1.SlowLogResponse)) },
		json:  func(m proto.Message) any { return slowLogJSON(m.(*asterv1.SlowLogResponse)) },
	},
	"hotkeys": {
		short: "Show a cluster's hottest keys (after HOTKEY ENABLE)",
		long: "Show cluster NAME's hottest keys, hottest first, with the estimated number of commands\n" +
			"that named each (sampled; HOTKEY ENABLE or 'cluster config NAME hotkey-enabled yes' turns\nsampling on).",
		args: []string{"NAME"},
		call: func(ctx context.Context, c asterv1.AdminServiceClient, a []string, f cmdFlags) (proto.Message, error) {
			return c.HotKeys(ctx, &asterv1.HotKeysRequest{Cluster: a[0], Count: int32(f.count)})
		},
		print: func(w io.Writer, m proto.Message) { printHotKeys(w, m.(*asterv1.HotKeysResponse)) },
		json:  func(m proto.Message) any { return hotKeysJSON(m.(*asterv1.HotKeysResponse)) },
	},
	"config": {
		short: "Show live settings (KNOB may be a glob), or set one",
		long: "Without VALUE, show cluster NAME's live settings (all, or those matching the glob KNOB,\n" +
			"e.g. 'hotkey-*'); with VALUE, set KNOB live, as CONFIG SET cluster.NAME.KNOB VALUE does.\n" +
			"Knobs: hotkey-enabled, hotkey-sample-every, hotkey-sketch-width, hotkey-sketch-depth,\n" +
			"hotkey-capacity, hotkey-decay, slowlog-log-slower-than, slowlog-max-len,\n" +
			"backup-request-enabled, backup-request-threshold-ms, backup-request-multiplier,\n" +
			"client-cache-enabled, client-cache-hot-only, client-cache-max-entries,\n" +
			"client-cache-max-value-bytes, client-cache-shard-count.",
		args: []string{"NAME"},
		opt:  []string{"KNOB", "VALUE"},
		call: func(ctx context.Context, c asterv1.AdminServiceClient, a []string, _ cmdFlags) (proto.Message, error) {
			if len(a) == 3 {
				return c.SetClusterConfig(ctx, &asterv1.SetClusterConfigRequest{Cluster: a[0], Name: a[1], Value: a[2]})
			}
			req := &asterv1.GetClusterConfigRequest{Cluster: a[0]}
			if len(a) == 2 {
				req.Pattern = a[1]
			}
			return c.GetClusterConfig(ctx, req)
		},
		print: func(w io.Writer, m proto.Message) {
			switch r := m.(type) {
			case *asterv1.SetClusterConfigResponse:
				printKnobs(w, r.GetKnob())
			case *asterv1.GetClusterConfigResponse:
				printKnobs(w, r.GetKnobs()...)
			}
		},
		json: func(m proto.Message) any {
			if r, ok := m.(*asterv1.SetClusterConfigResponse); ok {
				return map[string]any{"knob": knobJSON(r.GetKnob())}
			}
			return knobsJSON(m.(*asterv1.GetClusterConfigResponse))
		},
	},
}

// use is the command's synopsis: "eject NAME NODE", "config NAME [KNOB [VALUE]]".
func (c command) use(name string) string {
	parts := append([]string{name}, c.args...)
	opt := ""
	for i := len(c.opt) - 1; i >= 0; i-- {
		opt = "[" + strings.TrimSpace(c.opt[i]+" "+opt) + "]"
	}
	if opt != "" {
		parts = append(parts, opt)
	}
	return strings.Join(parts, " ")
}

// checkArgs checks the number of positional arguments and that none is empty.
func (c command) checkArgs(name string, pos []string) error {
	if len(pos) < len(c.args) || len(pos) > len(c.args)+len(c.opt) {
		switch {
		case len(c.args) == 0:
			return usagef("cluster %s takes no arguments, got %q", name, pos)
		case len(c.opt) > 0:
			return usagef("cluster %s takes %d to %d arguments (%s), got %d", name, len(c.args),
				len(c.args)+len(c.opt), strings.TrimPrefix(c.use(name), name+" "), len(pos))
		}
		return usagef("cluster %s takes %d arguments (%s), got %d", name, len(c.args), strings.Join(c.args, " "), len(pos))
	}
	names := append(slices.Clone(c.args), c.opt...)
	for i, p := range pos {
		if p == "" {
			return usagef("%s must not be empty", names[i])
		}
	}
	return nil
}

func (a *app) clusterCommand() *cobra.Command {
	cl := &cobra.Command{
		Use:   "cluster",
		Short: "Inspect and steer clusters: list, show, reload, eject, restore, slowlog, hotkeys, config",
		Long:  "Inspect and steer the clusters of a running asterd. NODE is a node's alias or its host:port address.",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
				return usagef("missing cluster command")
			case args[0] == "help":
				return cmd.Help()
			}
			return usagef("unknown cluster command %q", args[0])
		},
	}
	for _, name := range commandOrder {
		c := commands[name]
		sub := &cobra.Command{
			Use:               c.use(name),
			Short:             c.short,
			Long:              c.long,
			Args:              func(_ *cobra.Command, pos []string) error { return c.checkArgs(name, pos) },
			ValidArgsFunction: a.completeArgs(name),
		}
		var f cmdFlags
		switch name {
		case "eject":
			sub.Flags().StringVar(&f.reason, "reason", "", "why, shown by 'cluster show'")
		case "slowlog", "hotkeys":
			sub.Flags().IntVarP(&f.count, "count", "n", 10, "how many (-1 for all)")
		}
		sub.RunE = func(cmd *cobra.Command, pos []string) error {
			opts, err := a.options(cmd)
			if err != nil {
				return err
			}
			return a.call(&invocation{opts: opts, name: name, cmd: c, args: pos, flags: f})
		}
		cl.AddCommand(sub)
	}
	return cl
}

// completeArgs completes cluster names, then for eject and restore node aliases and
// addresses, for config knob names, by asking asterd with the flags already on the line. A
// shell waits for the answer, so the call gets 2 s at most and its errors are not explained.
func (a *app) completeArgs(name string) cobra.CompletionFunc {
	c := commands[name]
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		none := cobra.ShellCompDirectiveNoFileComp
		if len(args) > 1 || len(args) >= len(c.args)+len(c.opt) {
			return nil, none
		}
		opts, err := a.options(cmd)
		if err != nil {
			return nil, none
		}
		opts.timeout = min(opts.timeout, completionTimeout)
		var out []cobra.Completion
		err = opts.call(func(ctx context.Context, cl asterv1.AdminServiceClient) error {
			switch {
			case len(args) == 0:
				resp, err := cl.ListClusters(ctx, &asterv1.ListClustersRequest{})
				for _, c := range resp.GetClusters() {
					out = append(out, c.GetName())
				}
				return err
			case name == "config":
				resp, err := cl.GetClusterConfig(ctx, &asterv1.GetClusterConfigRequest{Cluster: args[0]})
				for _, k := range resp.GetKnobs() {
					out = append(out, k.GetName())
				}
				return err
			}
			resp, err := cl.GetCluster(ctx, &asterv1.GetClusterRequest{Name: args[0]})
			for _, n := range resp.GetCluster().GetNodes() {
				if n.GetAlias() != "" {
					out = append(out, n.GetAlias())
				} else {
					out = append(out, n.GetAddress())
				}
			}
			return err
		})
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		return out, none
	}
}

// completionTimeout bounds the call a completion makes.
const completionTimeout = 2 * time.Second

// withClient dials asterd as o says and runs f with a context that carries the token and the
// deadline. Errors are explained for a person (see explain).
func (o options) withClient(f func(ctx context.Context, c asterv1.AdminServiceClient) error) error {
	if err := o.call(f); err != nil {
		return o.explain(err)
	}
	return nil
}

// call is withClient without the explanation of errors.
func (o options) call(f func(ctx context.Context, c asterv1.AdminServiceClient) error) error {
	creds, err := o.tls.creds()
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(o.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", o.addr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	if o.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+o.token)
	}
	return f(ctx, asterv1.NewAdminServiceClient(conn))
}

// execute dials asterd, makes the call and prints its answer.
func (inv *invocation) execute(stdout io.Writer) error {
	var resp proto.Message
	err := inv.opts.withClient(func(ctx context.Context, c asterv1.AdminServiceClient) error {
		var err error
		resp, err = inv.cmd.call(ctx, c, inv.args, inv.flags)
		return err
	})
	if err != nil {
		if inv.cmd.failed != nil {
			inv.cmd.failed(stdout)
		}
		return &callError{err: err}
	}
	if inv.opts.output == "json" {
		if err := writeJSON(stdout, inv.cmd.json(resp)); err != nil {
			return &callError{err: err}
		}
		return nil
	}
	inv.cmd.print(stdout, resp)
	return nil
}
