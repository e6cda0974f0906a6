package testlog

import (
	"fmt"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// fakeT records what reaches t.Log and runs cleanups when told, standing for a test that ends.
type fakeT struct {
	testing.TB
	logs     []string
	cleanups []func()
}

func (f *fakeT) Log(args ...any)   { f.logs = append(f.logs, fmt.Sprint(args...)) }
func (f *fakeT) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

// A goroutine that logs after its test ended must be silenced: t.Log would panic.
func TestSilentAfterTheTestEnds(t *testing.T) {
	ft := &fakeT{TB: t}
	log := New(ft, "component", hclog.Info)
	log.Info("while the test runs")
	log.Debug("below the level")
	for _, fn := range ft.cleanups {
		fn()
	}
	log.Info("after the test ended")
	if len(ft.logs) != 1 {
		t.Fatalf("t.Log got %q, want only the line logged while the test ran", ft.logs)
	}
}
