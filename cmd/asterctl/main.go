// Command asterctl is the operator's client for asterd's gRPC admin API: it lists and shows
// clusters, reloads the configuration, and ejects or restores nodes.
//
//	asterctl [--addr HOST:PORT] [--token T] [-o table|json] [--timeout D] cluster list
//	asterctl ... cluster show NAME
//	asterctl ... cluster reload
//	asterctl ... cluster eject NAME NODE [--reason R]
//	asterctl ... cluster restore NAME NODE
//
// ASTER_ADMIN_ADDR and ASTER_ADMIN_TOKEN stand in for --addr and --token; flags win.
// --token-file FILE reads the token from a file (trailing newline trimmed), so that it appears
// neither in ps nor in the environment: --token wins over --token-file, which wins over
// ASTER_ADMIN_TOKEN; giving both flags is an error.
//
// --tls (or any --tls-* flag) connects over TLS, for an asterd with [admin] tls_* keys:
// --tls-ca verifies its certificate, --tls-cert/--tls-key present a client certificate,
// --tls-server-name overrides the name checked. ASTER_ADMIN_TLS, ASTER_ADMIN_TLS_CA,
// ASTER_ADMIN_TLS_CERT, ASTER_ADMIN_TLS_KEY and ASTER_ADMIN_TLS_SERVER_NAME stand in for them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	asterv1 "github.com/aster-proxy/aster/gen/aster/v1"
	"github.com/aster-proxy/aster/internal/bearer"
	"github.com/aster-proxy/aster/internal/tlsconf"
)

const (
	defaultAddr    = "127.0.0.1:7790"
	defaultTimeout = 10 * time.Second
	envAddr        = "ASTER_ADMIN_ADDR"
	envToken       = bearer.Env
	envTLS         = "ASTER_ADMIN_TLS"
	envTLSCA       = "ASTER_ADMIN_TLS_CA"
	envTLSCert     = "ASTER_ADMIN_TLS_CERT"
	envTLSKey      = "ASTER_ADMIN_TLS_KEY"
	envTLSName     = "ASTER_ADMIN_TLS_SERVER_NAME"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// options are the global flags, resolved against the environment.
type options struct {
	addr      string
	token     string
	tokenFile string
	output    string
	timeout   time.Duration
	tls       tlsOptions
}

// tlsOptions say how to reach an admin API that speaks TLS; tls.on false is plaintext.
type tlsOptions struct {
	on                        bool
	ca, cert, key, serverName string
}

const mainUsage = `Usage: asterctl [flags] <command> ...

Commands:
  cluster list                          list clusters
  cluster show NAME                     show a cluster and its nodes
  cluster reload                        re-read asterd's configuration file and apply it
  cluster eject NAME NODE [--reason R]  take a node out of routing until restored
  cluster restore NAME NODE             put an ejected node back into routing
  cluster slowlog NAME [-n N]           show a cluster's slowest recent commands
  cluster hotkeys NAME [-n N]           show a cluster's hottest keys (after HOTKEY ENABLE)
  cluster config NAME [KNOB [VALUE]]    show live settings (KNOB may be a glob), or set one

NODE is a node's alias or its host:port address.

Flags:
  --addr HOST:PORT       admin API address (env ASTER_ADMIN_ADDR, default 127.0.0.1:7790)
  --token T              bearer token (env ASTER_ADMIN_TOKEN; visible in ps: prefer --token-file)
  --token-file FILE      read the bearer token from FILE (trailing newline trimmed)
  -o table|json          output format (default table)
  --timeout D            deadline for the call (default 10s)
  --tls                  connect over TLS (env ASTER_ADMIN_TLS=true; implied by the --tls-* flags)
  --tls-ca FILE          CA that verifies asterd's certificate (env ASTER_ADMIN_TLS_CA; default system roots)
  --tls-cert FILE        client certificate, when asterd requires one (env ASTER_ADMIN_TLS_CERT)
  --tls-key FILE         its key (env ASTER_ADMIN_TLS_KEY)
  --tls-server-name N    name asterd's certificate must carry (env ASTER_ADMIN_TLS_SERVER_NAME;
                         default the --addr host)
`

const clusterUsage = `Usage: asterctl [flags] cluster <command> ...

Commands:
  list                          list clusters
  show NAME                     show a cluster and its nodes
  reload                        re-read asterd's configuration file and apply it
  eject NAME NODE [--reason R]  take a node out of routing until restored
  restore NAME NODE             put an ejected node back into routing
  slowlog NAME [-n N]           show a cluster's slowest recent commands
  hotkeys NAME [-n N]           show a cluster's hottest keys (after HOTKEY ENABLE)
  config NAME [KNOB [VALUE]]    show live settings (KNOB may be a glob), or set one

Run 'asterctl cluster <command> --help' for a command's usage, 'asterctl --help' for the flags.
`

// cmdFlags are the flags of cluster subcommands.
type cmdFlags struct {
	reason string // eject --reason
	count  int    // slowlog, hotkeys -n
}

// command is one "cluster" subcommand.
type command struct {
	usage string
	args  []string // names of the positional arguments
	opt   []string // names of optional positional arguments after args
	call  func(ctx context.Context, c asterv1.AdminServiceClient, args []string, f cmdFlags) (proto.Message, error)
	print func(w io.Writer, m proto.Message)
}

var commands = map[string]command{
	"list": {
		usage: "Usage: asterctl [flags] cluster list\n\nList every cluster with its node counts and routing table version.\n",
		call: func(ctx context.Context, c asterv1.AdminServiceClient, _ []string, _ cmdFlags) (proto.Message, error) {
			return c.ListClusters(ctx, &asterv1.ListClustersRequest{})
		},
		print: func(w io.Writer, m proto.Message) { printList(w, m.(*asterv1.ListClustersResponse)) },
	},
	"show": {
		usage: "Usage: asterctl [flags] cluster show NAME\n\nShow a cluster and the state of each of its nodes.\n",
		args:  []string{"NAME"},
		call: func(ctx context.Context, c asterv1.AdminServiceClient, a []string, _ cmdFlags) (proto.Message, error) {
			return c.GetCluster(ctx, &asterv1.GetClusterRequest{Name: a[0]})
		},
		print: func(w io.Writer, m proto.Message) { printCluster(w, m.(*asterv1.GetClusterResponse).GetCluster()) },
	},
	"reload": {
		usage: "Usage: asterctl [flags] cluster reload\n\nRe-read asterd's configuration file and apply the difference live.\nA configuration that fails validation is refused and nothing changes.\n",
		call: func(ctx context.Context, c asterv1.AdminServiceClient, _ []string, _ cmdFlags) (proto.Message, error) {
			return c.Reload(ctx, &asterv1.ReloadRequest{})
		},
		print: func(w io.Writer, m proto.Message) { printReload(w, m.(*asterv1.ReloadResponse)) },
	},
	"eject": {
		usage: "Usage: asterctl [flags] cluster eject NAME NODE [--reason R]\n\nTake NODE (alias or host:port) of cluster NAME out of routing until it is restored;\nhealth checks do not undo it.\n\nFlags:\n  --reason R   why, shown by 'cluster show'\n",
		args:  []string{"NAME", "NODE"},
		call: func(ctx context.Context, c asterv1.AdminServiceClient, a []string, f cmdFlags) (proto.Message, error) {
			return c.EjectNode(ctx, &asterv1.EjectNodeRequest{Cluster: a[0], Node: a[1], Reason: f.reason})
		},
		print: func(w io.Writer, m proto.Message) { printNodes(w, m.(*asterv1.EjectNodeResponse).GetNode()) },
	},
	"slowlog": {
		usage: "Usage: asterctl [flags] cluster slowlog NAME [-n N]\n\nShow cluster NAME's slowest recent commands, newest first (slowlog_log_slower_than,\nslowlog_max_len).\n\nFlags:\n  -n N   how many (default 10, -1 for all)\n",
		args:  []string{"NAME"},
		call: func(ctx context.Context, c asterv1.AdminServiceClient, a []string, f cmdFlags) (proto.Message, error) {
			return c.SlowLog(ctx, &asterv1.SlowLogRequest{Cluster: a[0], Count: int32(f.count)})
		},
		print: func(w io.Writer, m proto.Message) { printSlowLog(w, m.(*asterv1.SlowLogResponse)) },
	},
	"hotkeys": {
		usage: "Usage: asterctl [flags] cluster hotkeys NAME [-n N]\n\nShow cluster NAME's hottest keys, hottest first, with the estimated number of commands\nthat named each (sampled; HOTKEY ENABLE or 'cluster config NAME hotkey-enabled yes' turns\nsampling on).\n\nFlags:\n  -n N   how many (default 10, -1 for all)\n",
		args:  []string{"NAME"},
		call: func(ctx context.Context, c asterv1.AdminServiceClient, a []string, f cmdFlags) (proto.Message, error) {
			return c.HotKeys(ctx, &asterv1.HotKeysRequest{Cluster: a[0], Count: int32(f.count)})
		},
		print: func(w io.Writer, m proto.Message) { printHotKeys(w, m.(*asterv1.HotKeysResponse)) },
	},
	"config": {
		usage: "Usage: asterctl [flags] cluster config NAME [KNOB [VALUE]]\n\nWithout VALUE, show cluster NAME's live settings (all, or those matching the glob KNOB,\ne.g. 'hotkey-*'); with VALUE, set KNOB live, as CONFIG SET cluster.NAME.KNOB VALUE does.\nKnobs: hotkey-enabled, hotkey-sample-every, hotkey-sketch-width, hotkey-sketch-depth,\nhotkey-capacity, hotkey-decay, slowlog-log-slower-than, slowlog-max-len,\nbackup-request-enabled, backup-request-threshold-ms, backup-request-multiplier.\n",
		args:  []string{"NAME"},
		opt:   []string{"KNOB", "VALUE"},
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
	},
	"restore": {
		usage: "Usage: asterctl [flags] cluster restore NAME NODE\n\nPut NODE (alias or host:port) of cluster NAME back into routing.\n",
		args:  []string{"NAME", "NODE"},
		call: func(ctx context.Context, c asterv1.AdminServiceClient, a []string, _ cmdFlags) (proto.Message, error) {
			return c.RestoreNode(ctx, &asterv1.RestoreNodeRequest{Cluster: a[0], Node: a[1]})
		},
		print: func(w io.Writer, m proto.Message) { printNodes(w, m.(*asterv1.RestoreNodeResponse).GetNode()) },
	},
}

// usageError is a command line mistake: exit 2 with the usage on stderr.
type usageError struct {
	msg   string // "" when the flag package already printed the problem
	usage string
}

func (e *usageError) Error() string { return e.msg }

// helpRequested carries the usage to print on stdout for --help.
type helpRequested struct{ usage string }

func (e *helpRequested) Error() string { return "help requested" }

// run is asterctl without the process: it returns the exit code.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	inv, err := parse(args, stderr, getenv)
	var help *helpRequested
	var uerr *usageError
	switch {
	case errors.As(err, &help):
		fmt.Fprint(stdout, help.usage)
		return 0
	case errors.As(err, &uerr):
		if uerr.msg != "" {
			fmt.Fprintf(stderr, "asterctl: %s\n", uerr.msg)
		}
		fmt.Fprint(stderr, uerr.usage)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "asterctl: %v\n", err)
		return 2
	}
	if err := inv.execute(stdout); err != nil {
		if s, ok := status.FromError(err); ok {
			fmt.Fprintf(stderr, "asterctl: %s: %s\n", s.Code(), s.Message())
		} else {
			fmt.Fprintf(stderr, "asterctl: %v\n", err)
		}
		return 1
	}
	return 0
}

// invocation is a fully parsed command line.
type invocation struct {
	opts  options
	name  string // the cluster subcommand
	cmd   command
	args  []string
	flags cmdFlags
}

// parse reads the global flags, the command and its arguments; it does no I/O besides the flag
// package's own error messages on stderr.
func parse(args []string, stderr io.Writer, getenv func(string) string) (*invocation, error) {
	inv := &invocation{}
	fs := newFlagSet("asterctl", stderr)
	fs.StringVar(&inv.opts.addr, "addr", "", "")
	fs.StringVar(&inv.opts.token, "token", "", "")
	fs.StringVar(&inv.opts.tokenFile, "token-file", "", "")
	fs.StringVar(&inv.opts.output, "o", "table", "")
	fs.DurationVar(&inv.opts.timeout, "timeout", defaultTimeout, "")
	t := &inv.opts.tls
	fs.BoolVar(&t.on, "tls", false, "")
	fs.StringVar(&t.ca, "tls-ca", "", "")
	fs.StringVar(&t.cert, "tls-cert", "", "")
	fs.StringVar(&t.key, "tls-key", "", "")
	fs.StringVar(&t.serverName, "tls-server-name", "", "")
	if err := fs.Parse(args); err != nil {
		return nil, flagError(err, mainUsage)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := tlsFromEnv(t, set, getenv); err != nil {
		return nil, err
	}
	if !set["addr"] {
		inv.opts.addr = getenv(envAddr)
	}
	if inv.opts.addr == "" {
		inv.opts.addr = defaultAddr
	}
	if set["token"] && set["token-file"] {
		return nil, &usageError{msg: "--token and --token-file: give one", usage: mainUsage}
	}
	token, err := bearer.Resolve(flagValue(set["token"], inv.opts.token), flagValue(set["token-file"], inv.opts.tokenFile), getenv)
	if err != nil {
		return nil, err
	}
	inv.opts.token = token
	if inv.opts.output != "table" && inv.opts.output != "json" {
		return nil, &usageError{msg: fmt.Sprintf("-o %q: want table or json", inv.opts.output), usage: mainUsage}
	}
	if inv.opts.timeout <= 0 {
		return nil, &usageError{msg: fmt.Sprintf("--timeout %v: must be positive", inv.opts.timeout), usage: mainUsage}
	}

	rest := fs.Args()
	if len(rest) == 0 {
		return nil, &usageError{msg: "missing command", usage: mainUsage}
	}
	switch rest[0] {
	case "cluster":
	case "help":
		return nil, &helpRequested{usage: mainUsage}
	default:
		return nil, &usageError{msg: fmt.Sprintf("unknown command %q", rest[0]), usage: mainUsage}
	}
	rest = rest[1:]
	if len(rest) == 0 {
		return nil, &usageError{msg: "missing cluster command", usage: clusterUsage}
	}
	switch rest[0] {
	case "-h", "-help", "--help", "help":
		return nil, &helpRequested{usage: clusterUsage}
	}
	cmd, ok := commands[rest[0]]
	if !ok {
		return nil, &usageError{msg: fmt.Sprintf("unknown cluster command %q", rest[0]), usage: clusterUsage}
	}
	inv.name, inv.cmd = rest[0], cmd

	sub := newFlagSet("asterctl cluster "+inv.name, stderr)
	switch inv.name {
	case "eject":
		sub.StringVar(&inv.flags.reason, "reason", "", "")
	case "slowlog", "hotkeys":
		sub.IntVar(&inv.flags.count, "n", 10, "")
	}
	pos, err := parseInterspersed(sub, rest[1:])
	if err != nil {
		return nil, flagError(err, cmd.usage)
	}
	if len(pos) < len(cmd.args) || len(pos) > len(cmd.args)+len(cmd.opt) {
		msg := fmt.Sprintf("cluster %s takes %d arguments (%s), got %d", inv.name, len(cmd.args), strings.Join(cmd.args, " "), len(pos))
		if len(cmd.opt) > 0 {
			opt := ""
			for i := len(cmd.opt) - 1; i >= 0; i-- {
				opt = "[" + strings.TrimSpace(cmd.opt[i]+" "+opt) + "]"
			}
			msg = fmt.Sprintf("cluster %s takes %d to %d arguments (%s %s), got %d", inv.name, len(cmd.args),
				len(cmd.args)+len(cmd.opt), strings.Join(cmd.args, " "), opt, len(pos))
		}
		if len(cmd.args) == 0 {
			msg = fmt.Sprintf("cluster %s takes no arguments, got %q", inv.name, pos)
		}
		return nil, &usageError{msg: msg, usage: cmd.usage}
	}
	names := append(slices.Clone(cmd.args), cmd.opt...)
	for i, p := range pos {
		if p == "" {
			return nil, &usageError{msg: names[i] + " must not be empty", usage: cmd.usage}
		}
	}
	inv.args = pos
	return inv, nil
}

// flagValue is &v when the flag was given, nil otherwise.
func flagValue(given bool, v string) *string {
	if !given {
		return nil
	}
	return &v
}

// tlsFromEnv fills the TLS options no flag set from the environment, then checks them.
func tlsFromEnv(t *tlsOptions, set map[string]bool, getenv func(string) string) error {
	if !set["tls"] {
		if v := getenv(envTLS); v != "" {
			on, err := strconv.ParseBool(v)
			if err != nil {
				return &usageError{msg: fmt.Sprintf("%s=%q: want true or false", envTLS, v), usage: mainUsage}
			}
			t.on = on
		}
	}
	for _, f := range []struct {
		flag, env string
		v         *string
	}{{"tls-ca", envTLSCA, &t.ca}, {"tls-cert", envTLSCert, &t.cert}, {"tls-key", envTLSKey, &t.key}, {"tls-server-name", envTLSName, &t.serverName}} {
		if !set[f.flag] {
			*f.v = getenv(f.env)
		}
	}
	if (t.cert == "") != (t.key == "") {
		return &usageError{msg: "--tls-cert and --tls-key go together", usage: mainUsage}
	}
	// Naming any TLS file or name means TLS: a CA given to a plaintext dial would be ignored
	// silently, which is the mistake the flags exist to avoid.
	t.on = t.on || t.ca != "" || t.cert != "" || t.serverName != ""
	return nil
}

// creds returns the transport credentials t asks for.
func (t tlsOptions) creds() (credentials.TransportCredentials, error) {
	if !t.on {
		return insecure.NewCredentials(), nil
	}
	cfg, err := tlsconf.ClientWithCert(t.ca, t.serverName, t.cert, t.key)
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(cfg), nil
}

// newFlagSet returns a flag set that reports its errors on stderr but leaves usage to run.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	return fs
}

func flagError(err error, usage string) error {
	if errors.Is(err, flag.ErrHelp) {
		return &helpRequested{usage: usage}
	}
	// The flag package has already printed err.
	return &usageError{usage: usage}
}

// parseInterspersed parses flags that may come before, between or after positional arguments
// ("eject NAME NODE --reason R"), and returns the positional ones. After "--" everything is
// positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		consumed := len(args) - fs.NArg()
		rest := fs.Args()
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// execute dials asterd, makes the call and prints its answer.
func (inv *invocation) execute(stdout io.Writer) error {
	creds, err := inv.opts.tls.creds()
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(inv.opts.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", inv.opts.addr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), inv.opts.timeout)
	defer cancel()
	if inv.opts.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+inv.opts.token)
	}
	resp, err := inv.cmd.call(ctx, asterv1.NewAdminServiceClient(conn), inv.args, inv.flags)
	if err != nil {
		return err
	}
	if inv.opts.output == "json" {
		return printJSON(stdout, resp)
	}
	inv.cmd.print(stdout, resp)
	return nil
}

func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: false}.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s as JSON: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

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
