package proxy

import "github.com/aster-proxy/aster/dataplane/resp"

// keepSplitSubs is how many sub requests a place keeps for its next split; a place that split
// a command over thousands of hash slots drops them with the big command (releaseInput).
const keepSplitSubs = 64

// releaseInput gives back, between batches, the memory a big command made the session hold:
// the read buffer that grew for it (resp.Reader.Shrink) and whatever still points into it
// (the last command's Args, the places' frames), and what a big split built (sub requests, key
// order, per-group scratch). A session that sent one 100 MiB command and then idles, on a loop
// or a goroutine, must not pin 100 MiB for the rest of its life. Cheap when nothing grew: one
// length check.
func (s *session) releaseInput() {
	if !s.rd.Big() || !s.rd.Shrink() {
		return
	}
	s.cmd = resp.Command{}
	for _, pl := range s.places {
		pl.main.frame, pl.raw = nil, nil
		for _, c := range pl.subs {
			c.frame = nil
		}
		if len(pl.subs) > keepSplitSubs {
			clear(pl.subs)
			pl.subs = pl.subs[:0:0]
		}
		if cap(pl.order) > keepArgsScratch {
			pl.order = nil
		}
	}
	if cap(s.counts) > keepArgsScratch {
		s.counts, s.sizes, s.gks, s.targets, s.base = nil, nil, nil, nil, nil
	}
	if cap(s.keys) > keepArgsScratch {
		s.keys = nil
	}
	if cap(s.elems) > keepArgsScratch {
		s.elems = nil
	}
}

// keepArgsScratch is the capacity past which per-key or per-group scratch is dropped by
// releaseInput.
const keepArgsScratch = 4096
