package controlplane_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aster-proxy/aster/controlplane"
	"github.com/aster-proxy/aster/controlplane/config"
	"github.com/aster-proxy/aster/dataplane/route"
)

// refusingSink takes every snapshot but those naming a cluster in refuse, as a data plane that
// cannot open that cluster's listener does.
type refusingSink struct {
	mu     sync.Mutex
	refuse string
	taken  []*route.Snapshot
}

func (s *refusingSink) Apply(snap *route.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range snap.Clusters {
		if c.Name == s.refuse {
			return fmt.Errorf("cluster %q: listen tcp %s: bind: address already in use", c.Name, c.Listen.Addr)
		}
	}
	s.taken = append(s.taken, snap)
	return nil
}

func clusterNames(cs []controlplane.ClusterStatus) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name+"@"+c.ListenAddr)
	}
	return out
}

// TestReloadRefusedBySinkChangesNothing: a reload the data plane refuses leaves the control
// plane as it was (its clusters, the snapshot remote data planes watch) and returns the cause;
// the same configuration applies once the data plane takes it. A reload that changes nothing
// publishes nothing.
func TestReloadRefusedBySinkChangesNothing(t *testing.T) {
	conf := func(extra bool, slowlog int) *config.Config {
		t.Helper()
		s := fmt.Sprintf(`[[clusters]]
name = "main"
listen_addr = "127.0.0.1:7000"
cache_type = "redis"
servers = ["127.0.0.1:7100"]
slowlog_max_len = %d
`, slowlog)
		if extra {
			s += "[[clusters]]\nname = \"extra\"\nlisten_addr = \"127.0.0.1:7001\"\ncache_type = \"redis\"\nservers = [\"127.0.0.1:7101\"]\n"
		}
		cfg, err := config.Parse([]byte(s), "t.toml")
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	sink := &refusingSink{refuse: "extra"}
	cp, err := controlplane.New(conf(false, 10), sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := clusterNames(cp.Clusters())
	snap0, _, stop := cp.Snapshot()
	stop()

	_, err = cp.Reload(conf(true, 20))
	if !errors.Is(err, controlplane.ErrReloadFailed) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Reload refused by the sink: %v", err)
	}
	if after := clusterNames(cp.Clusters()); !slices.Equal(after, before) {
		t.Fatalf("a refused reload changed the clusters: %v, was %v", after, before)
	}
	if snap, _, stop := cp.Snapshot(); snap != snap0 {
		stop()
		t.Fatalf("a refused reload changed the snapshot remote data planes watch (version %d, was %d)", snap.Version, snap0.Version)
	} else {
		stop()
	}

	// Unchanged: nothing published.
	n := len(sink.taken)
	res, err := cp.Reload(conf(false, 10))
	if err != nil || len(res.Changed)+len(res.Added)+len(res.Removed) != 0 || !slices.Equal(res.Unchanged, []string{"main"}) {
		t.Fatalf("unchanged reload: %+v, %v", res, err)
	}
	if len(sink.taken) != n {
		t.Fatalf("an unchanged reload published %d snapshots", len(sink.taken)-n)
	}

	sink.mu.Lock()
	sink.refuse = ""
	sink.mu.Unlock()
	res, err = cp.Reload(conf(true, 20))
	if err != nil || !slices.Equal(res.Added, []string{"extra"}) || !slices.Equal(res.Changed, []string{"main"}) {
		t.Fatalf("the same reload, taken: %+v, %v", res, err)
	}
	if got := clusterNames(cp.Clusters()); len(got) != 2 {
		t.Fatalf("clusters after the reload: %v", got)
	}
}
