// Package testlog routes a component's hclog output to a test's log.
package testlog

import (
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// New returns a logger named name that writes to t.Log at level and above until the test ends.
// Goroutines that outlive the test (a gRPC handler finishing after Stop, which does not wait for
// handlers) are silenced rather than logging into a finished test, which the testing package
// reports as a panic or a data race.
func New(t testing.TB, name string, level hclog.Level) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: level, Output: Writer(t)})
}

// Writer returns New's writer, for loggers that write elsewhere too.
func Writer(t testing.TB) io.Writer {
	w := &writer{t: t}
	t.Cleanup(w.close)
	return w
}

// writer holds its mutex across the check and the Log, so no line slips in as the test ends.
type writer struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *writer) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
