package proxy

import "github.com/aster-proxy/aster/dataplane/resp"

// releaseInput gives back, between batches, the memory a big command made the session hold:
// the read buffer that grew for it (resp.Reader.Shrink) and whatever still points into it
// (the last command's Args, the slots' frames), and the sub-commands a big split built. A
// session that sent one 100 MiB command and then idles, on a loop or a goroutine, must not pin
// 100 MiB for the rest of its life. Cheap when nothing grew: one length check.
func (s *session) releaseInput() {
	if !s.rd.Big() || !s.rd.Shrink() {
		return
	}
	s.cmd = resp.Command{}
	for _, sl := range s.slots {
		sl.main.frame, sl.raw = nil, nil
	}
}
