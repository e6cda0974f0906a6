// Command asterctl is the operator's client for asterd's gRPC admin API: it lists and shows
// clusters, reloads the configuration, ejects or restores nodes, shows slow logs, hot keys and
// live settings, and converts twemproxy configurations.
//
//	asterctl cluster list [-o json]
//	asterctl cluster show NAME
//	asterctl cluster reload
//	asterctl cluster eject NAME NODE [--reason R]
//	asterctl cluster restore NAME NODE
//	asterctl cluster slowlog|hotkeys NAME [-n N]
//	asterctl cluster config NAME [KNOB [VALUE]]
//	asterctl version [--client]
//	asterctl config from-twemproxy nutcracker.yml > aster.toml
//	asterctl completion bash|zsh|fish
//
// Flags go anywhere on the line, before or after the command and its arguments, as kubectl's
// do; "--" ends them. The Go-style single-dash spelling of long flags (-addr, -reason) that
// asterctl always took is still accepted.
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
//
// Exit codes: 0 success, 1 the call (or a conversion) failed, 2 a mistake on the command line.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

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

// version is set at build time with -ldflags "-X main.version=..." (make build does); otherwise
// the module version (or "devel") is reported.
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func init() {
	// Help lists commands in the order of use (list, show, reload, eject, ...), not A to Z.
	cobra.EnableCommandSorting = false
}

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
	// tokenFrom says where the token came from, for an error that names it: "--token",
	// "--token-file FILE", "ASTER_ADMIN_TOKEN" or "" when there is none.
	tokenFrom string
}

// tlsOptions say how to reach an admin API that speaks TLS; tls.on false is plaintext.
type tlsOptions struct {
	on                        bool
	ca, cert, key, serverName string
}

// usageError is a command line mistake: exit 2 with the command's usage on stderr, unless
// quiet (a token file that cannot be read is no matter of usage).
type usageError struct {
	msg   string
	quiet bool
}

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// callError is a failure after the command line was understood (the call, a file to
// convert): exit 1, no usage.
type callError struct{ err error }

func (e *callError) Error() string { return e.err.Error() }
func (e *callError) Unwrap() error { return e.err }

// invocation is a fully parsed admin command line: what to call, how and where.
type invocation struct {
	opts  options
	name  string // the cluster subcommand, or "version"
	cmd   command
	args  []string
	flags cmdFlags
}

// app is one run of asterctl: its command tree, outputs and environment.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	root           *cobra.Command
	// call runs a parsed admin invocation; tests replace it to see what was parsed.
	call func(*invocation) error
}

// run is asterctl without the process: it returns the exit code.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := newApp(stdout, stderr, getenv)
	a.call = func(inv *invocation) error { return inv.execute(stdout) }
	return a.execute(args)
}

// execute runs the command line and maps its outcome to an exit code.
func (a *app) execute(args []string) int {
	args = longFlagsCompat(a.root, args)
	// A shell asking for completions (__complete) has half-typed flags on its line.
	completing := len(args) > 0 && strings.HasPrefix(args[0], "__complete")
	if bad := unknownFlag(a.root, args); bad != "" && !completing {
		// cobra would take the word after an unknown flag for its value and then complain
		// about that word instead ("unknown command list").
		fmt.Fprintf(a.stderr, "asterctl: unknown flag: %s\n", bad)
		fmt.Fprint(a.stderr, a.root.UsageString())
		return 2
	}
	a.root.SetArgs(args)
	cmd, err := a.root.ExecuteC()
	if err == nil {
		return 0
	}
	var cerr *callError
	if errors.As(err, &cerr) {
		// One line per problem (a conversion lists them all), each marked as asterctl's.
		for _, line := range strings.Split(cerr.err.Error(), "\n") {
			fmt.Fprintf(a.stderr, "asterctl: %s\n", line)
		}
		return 1
	}
	// Everything else is the command line's fault: the flag package's, cobra's (unknown
	// command, bad argument count) or ours (usageError).
	fmt.Fprintf(a.stderr, "asterctl: %v\n", err)
	var uerr *usageError
	if cmd != nil && !(errors.As(err, &uerr) && uerr.quiet) {
		fmt.Fprint(a.stderr, cmd.UsageString())
	}
	return 2
}

func newApp(stdout, stderr io.Writer, getenv func(string) string) *app {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	root := &cobra.Command{
		Use:   "asterctl",
		Short: "asterctl steers a running asterd through its admin API",
		Long: `asterctl steers a running asterd through its gRPC admin API: it lists and shows clusters,
reloads the configuration, ejects and restores nodes, shows slow logs, hot keys and live
settings; it also converts a twemproxy configuration to Aster's.

` + overview() + `
Flags go anywhere on the line. The environment stands in for unset flags:
  ASTER_ADMIN_ADDR             --addr
  ASTER_ADMIN_TOKEN            --token (prefer --token-file: a flag shows in ps)
  ASTER_ADMIN_TLS=true         --tls
  ASTER_ADMIN_TLS_CA           --tls-ca
  ASTER_ADMIN_TLS_CERT         --tls-cert
  ASTER_ADMIN_TLS_KEY          --tls-key
  ASTER_ADMIN_TLS_SERVER_NAME  --tls-server-name

Exit codes: 0 success, 1 the call failed, 2 a mistake on the command line.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usagef("missing command")
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{msg: err.Error()} })
	pf := root.PersistentFlags()
	pf.String("addr", defaultAddr, "admin API address HOST:PORT (env ASTER_ADMIN_ADDR)")
	pf.String("token", "", "bearer token (env ASTER_ADMIN_TOKEN; visible in ps: prefer --token-file)")
	pf.String("token-file", "", "read the bearer token from FILE (trailing newline trimmed)")
	pf.StringP("output", "o", "table", "output format: table or json")
	pf.Duration("timeout", defaultTimeout, "deadline for the call")
	pf.Bool("tls", false, "connect over TLS (env ASTER_ADMIN_TLS=true; implied by the --tls-* flags)")
	pf.String("tls-ca", "", "CA FILE that verifies asterd's certificate (env ASTER_ADMIN_TLS_CA; default system roots)")
	pf.String("tls-cert", "", "client certificate FILE, when asterd requires one (env ASTER_ADMIN_TLS_CERT)")
	pf.String("tls-key", "", "its key FILE (env ASTER_ADMIN_TLS_KEY)")
	pf.String("tls-server-name", "", "name asterd's certificate must carry (env ASTER_ADMIN_TLS_SERVER_NAME; default the --addr host)")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))

	root.AddCommand(a.clusterCommand(), a.versionCommand(), a.configCommand(), a.completionCommand())
	a.root = root
	return a
}

// overview lists every command line asterctl takes, for the top-level help.
func overview() string {
	var b strings.Builder
	b.WriteString("Commands:\n")
	line := func(use, short string) { fmt.Fprintf(&b, "  %-38s %s\n", use, short) }
	for _, name := range commandOrder {
		c := commands[name]
		use := "cluster " + c.use(name)
		switch name {
		case "eject":
			use += " [--reason R]"
		case "slowlog", "hotkeys":
			use += " [-n N]"
		}
		line(use, c.short)
	}
	line("version [--client]", "asterctl's version and asterd's")
	line("config from-twemproxy FILE", "convert a nutcracker.yml to Aster's TOML")
	line("completion bash|zsh|fish|powershell", "shell completion script")
	b.WriteString("NODE is a node's alias or its host:port address.\n")
	return b.String()
}

// options resolves the global flags of cmd against the environment and checks them.
func (a *app) options(cmd *cobra.Command) (options, error) {
	fs := cmd.Flags()
	var o options
	o.addr, _ = fs.GetString("addr")
	o.token, _ = fs.GetString("token")
	o.tokenFile, _ = fs.GetString("token-file")
	o.output, _ = fs.GetString("output")
	o.timeout, _ = fs.GetDuration("timeout")
	t := &o.tls
	t.on, _ = fs.GetBool("tls")
	t.ca, _ = fs.GetString("tls-ca")
	t.cert, _ = fs.GetString("tls-cert")
	t.key, _ = fs.GetString("tls-key")
	t.serverName, _ = fs.GetString("tls-server-name")

	set := func(name string) bool { return fs.Changed(name) }
	if err := tlsFromEnv(t, set, a.getenv); err != nil {
		return o, err
	}
	if !set("addr") {
		if v := a.getenv(envAddr); v != "" {
			o.addr = v
		}
	}
	if o.addr == "" {
		o.addr = defaultAddr
	}
	if set("token") && set("token-file") {
		return o, usagef("--token and --token-file: give one")
	}
	token, err := bearer.Resolve(flagValue(set("token"), o.token), flagValue(set("token-file"), o.tokenFile), a.getenv)
	if err != nil {
		return o, &usageError{msg: err.Error(), quiet: true}
	}
	o.token = token
	switch {
	case token == "":
	case set("token"):
		o.tokenFrom = "--token"
	case set("token-file"):
		o.tokenFrom = "--token-file " + o.tokenFile
	default:
		o.tokenFrom = envToken
	}
	if o.output != "table" && o.output != "json" {
		return o, usagef("-o %q: want table or json", o.output)
	}
	if o.timeout <= 0 {
		return o, usagef("--timeout %v: must be positive", o.timeout)
	}
	return o, nil
}

// flagValue is &v when the flag was given, nil otherwise.
func flagValue(given bool, v string) *string {
	if !given {
		return nil
	}
	return &v
}

// tlsFromEnv fills the TLS options no flag set from the environment, then checks them.
func tlsFromEnv(t *tlsOptions, set func(string) bool, getenv func(string) string) error {
	if !set("tls") {
		if v := getenv(envTLS); v != "" {
			on, err := strconv.ParseBool(v)
			if err != nil {
				return usagef("%s=%q: want true or false", envTLS, v)
			}
			t.on = on
		}
	}
	for _, f := range []struct {
		flag, env string
		v         *string
	}{{"tls-ca", envTLSCA, &t.ca}, {"tls-cert", envTLSCert, &t.cert}, {"tls-key", envTLSKey, &t.key}, {"tls-server-name", envTLSName, &t.serverName}} {
		if !set(f.flag) {
			*f.v = getenv(f.env)
		}
	}
	if (t.cert == "") != (t.key == "") {
		return usagef("--tls-cert and --tls-key go together")
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

// longFlagsCompat rewrites what the Go flag package took, and asterctl with it before it used
// cobra, to pflag's spelling: single-dash long flags ("-addr X", "-reason=R") become "--addr X"
// (pflag would read them as bundles of one-letter flags), and double-dash one-letter flags
// ("--o json", "--n=3") become "-o json". Only names of flags of the command tree are
// rewritten, and nothing after "--".
func longFlagsCompat(root *cobra.Command, args []string) []string {
	long, short := flagNames(root)
	out := make([]string, len(args))
	copy(out, args)
	for i, arg := range out {
		if arg == "--" || (i == 0 && strings.HasPrefix(arg, "__complete")) {
			break
		}
		switch {
		case len(arg) >= 3 && arg[0] == '-' && arg[1] != '-':
			name, _, _ := strings.Cut(arg[1:], "=")
			if _, ok := long[name]; ok {
				out[i] = "-" + arg
			}
		case len(arg) >= 3 && strings.HasPrefix(arg, "--"):
			name, _, _ := strings.Cut(arg[2:], "=")
			_, isShort := short[name]
			_, isLong := long[name]
			if isShort && !isLong {
				out[i] = arg[1:]
			}
		}
	}
	return out
}

// flagNames returns the long and one-letter flag names of every command of the tree, each
// with whether it takes a value (the next word, unless given with "=" or glued).
func flagNames(root *cobra.Command) (long, short map[string]bool) {
	long, short = map[string]bool{"help": false}, map[string]bool{"h": false}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.PersistentFlags(), c.LocalFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				long[f.Name] = f.NoOptDefVal == ""
				if f.Shorthand != "" {
					short[f.Shorthand] = f.NoOptDefVal == ""
				}
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return long, short
}

// unknownFlag returns the first flag on the line (before "--") that no command defines; "".
// A flag of another command is left to cobra, which names the command that lacks it.
func unknownFlag(root *cobra.Command, args []string) string {
	long, short := flagNames(root)
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			return ""
		case strings.HasPrefix(arg, "--"):
			name, _, hasValue := strings.Cut(arg[2:], "=")
			takesValue, ok := long[name]
			if !ok {
				return arg
			}
			if takesValue && !hasValue {
				i++ // its value, whatever it looks like
			}
		case len(arg) > 1 && arg[0] == '-' && !isNumber(arg):
			takesValue, ok := short[arg[1:2]]
			if !ok {
				return arg
			}
			if takesValue && len(arg) == 2 {
				i++
			}
		}
	}
	return ""
}

// isNumber tells a negative number (the value of -n) from a flag.
func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}
