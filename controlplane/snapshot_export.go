package controlplane

import "github.com/aster-proxy/aster/dataplane/route"

// RingHash is how a standalone cluster's ring places keys: the hash function's name and the
// hash tag. A remote data plane needs them to rebuild the ring, and route.Ring does not expose
// them, so they come from the configuration the ring was built from.
type RingHash struct {
	Method string // a route.Hash name; "" means the default
	Tag    string // two characters, or "" for none
}

// ExportSnapshot returns the latest snapshot together with the RingHash of each of its
// standalone clusters by name. Both are read under one lock, so they describe the same
// configuration even while a reload runs. The snapshot is shared and must not be modified.
func (cp *ControlPlane) ExportSnapshot() (*route.Snapshot, map[string]RingHash) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	hashes := make(map[string]RingHash, len(cp.clusters))
	for _, c := range cp.clusters {
		if c.fetcher == nil {
			hashes[c.cfg.Name] = RingHash{Method: c.cfg.HashMethod, Tag: c.cfg.HashTag}
		}
	}
	return cp.snapshot, hashes
}
