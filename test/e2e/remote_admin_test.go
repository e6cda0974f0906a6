package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/aster-proxy/aster/internal/redistest"
)

// TestRemoteControlPlaneKeepsNoDataPlaneState: a --role control asterd runs no data plane, so
// the admin RPCs about what each data plane keeps (slow log, hot keys, live settings) answer
// FailedPrecondition saying so and where to ask; and that advice works on a data plane.
func TestRemoteControlPlaneKeepsNoDataPlaneState(t *testing.T) {
	servers := startServers(t, 3)
	setup := newRemoteSetup(t, servers, "rt0k")
	setup.startControl(t)
	data := setup.startData(t, "--token", "rt0k")
	redistest.WaitListening(t, setup.listen, 10*time.Second)

	cases := []struct {
		name    string
		args    []string
		command string // the Redis command the answer points to
	}{
		{"slowlog", []string{"cluster", "slowlog", "remote"}, "SLOWLOG GET"},
		{"hotkeys", []string{"cluster", "hotkeys", "remote"}, "HOTKEY GET"},
		{"config get", []string{"cluster", "config", "remote"}, "CONFIG GET cluster.remote.*"},
		{"config set", []string{"cluster", "config", "remote", "hotkey-enabled", "yes"}, "CONFIG SET cluster.remote.<knob> <value>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := asterctl(t, nil, append([]string{"--addr", setup.admin, "--token", "rt0k"}, c.args...)...)
			if r.code == 0 {
				t.Fatalf("asterctl %v against --role control succeeded: %v", c.args, r)
			}
			for _, want := range []string{"FailedPrecondition", "control plane (--role control)", "--role data",
				`cluster "remote"`, setup.listen, c.command} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("answer lacks %q: %v", want, r)
				}
			}
		})
	}

	// The advice: the data plane's listener has the state.
	cl := data.client(t)
	if err := cl.Do(ctx, "CONFIG", "SET", "cluster.remote.hotkey-enabled", "yes").Err(); err != nil {
		t.Fatalf("CONFIG SET through the data plane: %v", err)
	}
	got, err := cl.Do(ctx, "CONFIG", "GET", "cluster.remote.hotkey-enabled").StringSlice()
	if err != nil || len(got) != 2 || got[1] != "yes" {
		t.Fatalf("CONFIG GET through the data plane = %v, %v; want hotkey-enabled yes", got, err)
	}
	if err := cl.Do(ctx, "SLOWLOG", "GET").Err(); err != nil {
		t.Fatalf("SLOWLOG GET through the data plane: %v", err)
	}
	if err := cl.Do(ctx, "HOTKEY", "GET").Err(); err != nil {
		t.Fatalf("HOTKEY GET through the data plane: %v", err)
	}
}
