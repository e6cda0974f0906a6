package route

import (
	"slices"
	"time"
)

// Snapshot is everything a data plane serves, as the control plane publishes it: every
// cluster's listener and backend settings and its routing table. The data plane reconciles its
// listeners with it: clusters it names are served, others are closed.
type Snapshot struct {
	Version  uint64
	Clusters []ClusterSpec
}

// ClusterSpec is one cluster of a Snapshot: its settings, each declared once in the group
// that says how a change of it is applied (groups.go), and its routing table.
type ClusterSpec struct {
	Name    string
	Listen  ListenSettings
	Access  AccessSettings
	Backend BackendSettings
	Live    LiveSettings

	// Table is the cluster's routing table; nil while a Redis Cluster's first slot map is
	// still being fetched (the data plane then keeps what it has, or waits).
	Table *Table
}

// UserRights are one user's Redis-ACL-style rules (package acl).
type UserRights struct {
	// Commands are Redis ACL command rules applied left to right from no command, as a new
	// Redis user's ("+@all -@dangerous", "-@all +get +config|get"); "" means every command.
	Commands string
	// Keys are glob patterns (Redis's ~pattern) every key of a command must match; nil means
	// every key.
	Keys []string
}

// Equal reports whether two users' rules are the same.
func (r UserRights) Equal(o UserRights) bool {
	return r.Commands == o.Commands && slices.Equal(r.Keys, o.Keys) && (r.Keys == nil) == (o.Keys == nil)
}

// HotkeySpec sizes a cluster's hot-key tracker: one command in SampleEvery is sampled into a
// Width × Depth count-min sketch and a top-k table of Capacity keys with HeavyKeeper decay
// base Decay.
type HotkeySpec struct {
	SampleEvery, Width, Depth, Capacity int
	Decay                               float64
}

// BackupRequest: when enabled, a read sent to a slot's master that has no reply after the
// threshold is also sent to a replica, and the first answer wins. The threshold is
// TriggerSlow, or Multiplier × the master's moving-average latency, whichever is smaller;
// TriggerSlow 0 means only the relative one.
type BackupRequest struct {
	Enabled     bool
	TriggerSlow time.Duration
	Multiplier  float64
}
