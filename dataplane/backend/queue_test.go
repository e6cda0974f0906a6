package backend

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestReqQueueIsAFIFO checks the ring against a slice: random pushes and pops (so that the
// head wraps, and the ring grows while wrapped), and at, set and stampLast at every position.
func TestReqQueueIsAFIFO(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var q reqQueue
	var model []*Request
	for step := range 20000 {
		if rng.IntN(100) < 55 || len(model) == 0 {
			r := &Request{}
			q.push(r)
			model = append(model, r)
		} else {
			if got := q.pop(); got != model[0] {
				t.Fatalf("step %d: pop = %p, want %p", step, got, model[0])
			}
			model = model[1:]
		}
		if q.len() != len(model) {
			t.Fatalf("step %d: len = %d, want %d", step, q.len(), len(model))
		}
		if l := len(q.buf); l&(l-1) != 0 {
			t.Fatalf("step %d: ring of %d, not a power of two", step, l)
		}
		if len(model) == 0 {
			continue
		}
		i := rng.IntN(len(model))
		if q.at(i) != model[i] {
			t.Fatalf("step %d: at(%d) is not the %d-th pushed", step, i, i)
		}
		if rng.IntN(10) == 0 {
			r := &Request{}
			q.set(i, r)
			model[i] = r
		}
		if rng.IntN(10) == 0 {
			n := 1 + rng.IntN(len(model))
			tm := time.Now()
			q.stampLast(n, tm)
			for j, r := range model {
				if stamped := r.sent == monoNanos(tm); stamped != (j >= len(model)-n) {
					t.Fatalf("step %d: stampLast(%d) stamped #%d of %d: %v", step, n, j, len(model), stamped)
				}
				r.sent = 0
			}
		}
	}
}
