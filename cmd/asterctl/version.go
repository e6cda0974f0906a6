package main

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	asterv1 "github.com/aster-proxy/aster/gen/aster/v1"
)

// versionCommand prints asterctl's version and, unless --client, the version of the asterd
// at --addr (GetVersion). When asterd cannot be asked, the client's version is still printed
// and the exit code is 1.
func (a *app) versionCommand() *cobra.Command {
	var f cmdFlags
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print asterctl's version and the version of the asterd at --addr",
		Long:  "Print asterctl's version and, unless --client, the version of the asterd at --addr.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := a.options(cmd)
			if err != nil {
				return err
			}
			c := command{
				call: func(ctx context.Context, c asterv1.AdminServiceClient, _ []string, f cmdFlags) (proto.Message, error) {
					if f.client {
						return &asterv1.GetVersionResponse{}, nil
					}
					return c.GetVersion(ctx, &asterv1.GetVersionRequest{})
				},
				print: func(w io.Writer, m proto.Message) { printVersion(w, server(m, f), opts.addr) },
				json:  func(m proto.Message) any { return versionJSON(server(m, f)) },
				// Without an answer the client's own version is still worth printing.
				failed: func(w io.Writer) {
					if opts.output == "table" {
						printVersion(w, nil, "")
					}
				},
			}
			return a.call(&invocation{opts: opts, name: "version", cmd: c, args: nil, flags: f})
		},
	}
	cmd.Flags().BoolVar(&f.client, "client", false, "print only asterctl's own version; do not ask asterd")
	return cmd
}

// server is the server's reply, nil with --client.
func server(m proto.Message, f cmdFlags) *asterv1.GetVersionResponse {
	if f.client {
		return nil
	}
	return m.(*asterv1.GetVersionResponse)
}

// clientVersion is asterctl's own version.
func clientVersion() versionView {
	return versionView{Version: buildVersion(), GoVersion: runtime.Version()}
}

// printVersion prints the client's version and, when server is not nil, the server's.
func printVersion(w io.Writer, server *asterv1.GetVersionResponse, addr string) {
	c := clientVersion()
	fmt.Fprintf(w, "Client: asterctl %s (%s)\n", c.Version, c.GoVersion)
	if server != nil {
		fmt.Fprintf(w, "Server: asterd %s (%s) at %s\n", server.GetVersion(), server.GetGoVersion(), addr)
	}
}

// versionJSON is {"client": {...}, "server": {...}}; server is null with --client.
func versionJSON(server *asterv1.GetVersionResponse) any {
	out := map[string]any{"client": clientVersion(), "server": nil}
	if server != nil {
		out["server"] = versionView{Version: server.GetVersion(), GoVersion: server.GetGoVersion()}
	}
	return out
}

// completionCommand writes a shell completion script: cobra's, which completes commands and
// flags, and cluster names and nodes by asking asterd.
func (a *app) completionCommand() *cobra.Command {
	shells := []string{"bash", "zsh", "fish", "powershell"}
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Write a shell completion script to stdout",
		Long: `Write a shell completion script to stdout. For example:

  bash:  source <(asterctl completion bash)   (or save it in /etc/bash_completion.d/asterctl)
  zsh:   asterctl completion zsh > "${fpath[1]}/_asterctl"
  fish:  asterctl completion fish > ~/.config/fish/completions/asterctl.fish

Cluster names and nodes complete by asking the asterd that --addr (or ASTER_ADMIN_ADDR) names.`,
		ValidArgs: shells,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("completion takes one shell (bash, zsh, fish or powershell), got %d arguments", len(args))
			}
			for _, s := range shells {
				if args[0] == s {
					return nil
				}
			}
			return usagef("completion: unknown shell %q (want bash, zsh, fish or powershell)", args[0])
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			root, w := cmd.Root(), cmd.OutOrStdout()
			var err error
			switch args[0] {
			case "bash":
				err = root.GenBashCompletionV2(w, true)
			case "zsh":
				err = root.GenZshCompletion(w)
			case "fish":
				err = root.GenFishCompletion(w, true)
			case "powershell":
				err = root.GenPowerShellCompletionWithDesc(w)
			}
			if err != nil {
				return &callError{err: err}
			}
			return nil
		},
	}
}
