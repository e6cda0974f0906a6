package proxy

import "testing"

// pace: a new session sends one command per batch; the window doubles only when a batch used
// it all, never past maxBatch, and is cut to what fits half the output limit at the biggest
// reply seen, one command at least (a reply bigger than the limit still goes).
func TestPaceWindow(t *testing.T) {
	const limit = 1 << 20
	s := &session{gen: &generation{acc: &access{outputLimit: limit}}, window: 1}
	steps := []struct {
		name       string
		n, biggest int
		want       int
	}{
		{"full batch of small replies doubles", 1, 10, 2},
		{"again", 2, 10, 4},
		{"a batch that did not use the window keeps it", 1, 10, 4},
		{"replies of an eighth of the limit: four fit in half", 4, limit / 8, 4},
		{"a reply of a sixth: three fit in half", 1, limit / 6, 3},
		{"a reply of a third: one", 1, limit / 3, 1},
		{"small again: doubles", 1, 10, 2},
		{"a reply bigger than the limit: one at a time", 3, 5 * limit, 1},
		{"still one while they stay big", 1, limit, 1},
		{"small again: grows back by doubling", 1, 10, 2},
		{"empty replies grow too", 2, 0, 4},
	}
	for _, st := range steps {
		s.pace(st.n, st.biggest)
		if s.window != st.want {
			t.Fatalf("%s: window %d, want %d", st.name, s.window, st.want)
		}
	}
	for range 20 {
		s.pace(s.window, 1)
	}
	if s.window != maxBatch {
		t.Fatalf("window grew to %d, want at most maxBatch %d", s.window, maxBatch)
	}
}

// What places keep for the next batch is bounded in all, not only per buffer: a batch of many
// big (but each under maxKeptOut) replies leaves at most the room it was given, and small
// buffers are still kept for reuse.
func TestPlacesKeepBuffersWithinTheirRoom(t *testing.T) {
	const room0 = 1 << 20
	room, kept := room0, 0
	for range 64 {
		pl := &place{local: make([]byte, 0, 200<<10)}
		pl.main.req.Reply = make([]byte, 0, 100<<10)
		pl.main.buf = make([]byte, 0, 64)
		pl.release(&room)
		kept += cap(pl.local) + cap(pl.main.req.Reply) + cap(pl.main.buf)
	}
	if kept > room0 {
		t.Errorf("places kept %d KiB of buffers, want at most %d KiB", kept>>10, room0>>10)
	}
	if kept == 0 {
		t.Error("places kept nothing for reuse")
	}
}
