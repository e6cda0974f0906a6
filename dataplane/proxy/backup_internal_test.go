package proxy

import (
	"testing"
	"time"

	"github.com/aster-proxy/aster/dataplane/route"
)

func TestBackupDelay(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name string
		b    route.BackupRequest
		avg  time.Duration
		want time.Duration
	}{
		{"fixed only", route.BackupRequest{TriggerSlow: 50 * ms}, 10 * ms, 50 * ms},
		{"relative earlier", route.BackupRequest{TriggerSlow: 50 * ms, Multiplier: 2}, 10 * ms, 20 * ms},
		{"fixed earlier", route.BackupRequest{TriggerSlow: 5 * ms, Multiplier: 2}, 10 * ms, 5 * ms},
		{"relative floor", route.BackupRequest{Multiplier: 2}, 100 * time.Microsecond, ms},
		{"no average yet", route.BackupRequest{Multiplier: 2}, 0, 0},
		{"no average yet, fixed", route.BackupRequest{TriggerSlow: 50 * ms, Multiplier: 2}, 0, 50 * ms},
	} {
		if got := backupDelay(&tc.b, tc.avg); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
