package fdlimit

import (
	"slices"
	"testing"
)

func TestPlan(t *testing.T) {
	// One node, one connection, one loop: 1 listener + 2 loop fds + 1×(1+2) = 6 per cluster.
	small := func(maxClients int) Demand {
		return Demand{MaxClients: maxClients, Nodes: 1, NodeConnections: 1, Loops: 1}
	}
	cases := []struct {
		name  string
		limit uint64
		ds    []Demand
		want  []int
	}{
		{"no limit known keeps the config", 0, []Demand{small(10000), small(0)}, []int{10000, 0}},
		{"everything fits", 1 << 20, []Demand{small(10000), small(10000)}, []int{20000, 20000}},
		// A cluster wants two descriptors per client: its own and one backend connection it holds.
		{"exactly fits", Reserved + 12 + 600, []Demand{small(100), small(200)}, []int{200, 400}},
		// 200 - 64 - 12 = 124 for clients: an equal split.
		{"two floods split evenly", 200, []Demand{small(10000), small(10000)}, []int{62, 62}},
		// A small cluster keeps its own; the big one gets the rest, not a proportional sliver.
		{"small keeps its want", 200, []Demand{small(10000), small(20)}, []int{84, 40}},
		{"unbounded gets what is left", 200, []Demand{small(0), small(20)}, []int{84, 40}},
		{"unbounded under a huge limit", 1 << 20, []Demand{small(0)}, []int{1<<20 - Reserved - 6}},
		{"infinite limit", ^uint64(0), []Demand{small(10000)}, []int{20000}},
		{"one more than fits", Reserved + 12 + 599, []Demand{small(100), small(200)}, []int{200, 399}},
		// Backends come first: the clients get what they leave, at least one each.
		{"backends take all", 100, []Demand{{MaxClients: 10, Nodes: 20, NodeConnections: 4}, small(10)}, []int{1, 1}},
		{"limit below the reserve", 10, []Demand{small(10000)}, []int{1}},
		{"no clusters", 100, nil, []int{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Plan(tc.limit, tc.ds)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Plan(%d) = %v, want %v", tc.limit, got, tc.want)
			}
		})
	}
}

// The rule, for any mix: the shares plus the backends and the reserve fit the limit (when at
// least one client each fits at all), and no cluster gets more than it asked for.
func TestPlanFits(t *testing.T) {
	for limit := uint64(80); limit < 3000; limit += 37 {
		for _, ds := range [][]Demand{
			{{MaxClients: 10000, Nodes: 3, NodeConnections: 2, Loops: 2}, {MaxClients: 5, Nodes: 1, NodeConnections: 1, Loops: 2}, {Nodes: 6, NodeConnections: 1, Loops: 2}},
			{{MaxClients: 1, Nodes: 1, NodeConnections: 1}, {MaxClients: 1 << 20, Nodes: 1, NodeConnections: 64}},
		} {
			eff := Plan(limit, ds)
			used := uint64(Reserved)
			for i, d := range ds {
				used += uint64(d.backend()) + uint64(eff[i])
				if d.MaxClients > 0 && eff[i] > PerClient*d.MaxClients {
					t.Fatalf("limit %d: cluster %d got %d, more than its %d", limit, i, eff[i], d.MaxClients)
				}
			}
			if floor := Need(withMax(ds, 1)); limit >= floor && used > limit {
				t.Fatalf("limit %d: plan %v uses %d descriptors", limit, eff, used)
			}
		}
	}
}

func withMax(ds []Demand, n int) []Demand {
	out := slices.Clone(ds)
	for i := range out {
		out[i].MaxClients = n
	}
	return out
}

func TestNeed(t *testing.T) {
	ds := []Demand{{MaxClients: 10000, Nodes: 3, NodeConnections: 2, Loops: 4}, {MaxClients: 0, Nodes: 1, NodeConnections: 1}}
	// 64 + (1 + 8 + 3×4 + 2×10000) + (1 + 0 + 1×3 + 0)
	if got, want := Need(ds), uint64(64+20021+4); got != want {
		t.Fatalf("Need = %d, want %d", got, want)
	}
}

func TestRaise(t *testing.T) {
	cur, hard, err := Raise(0)
	if err != nil {
		t.Fatalf("Raise: %v", err)
	}
	if cur == 0 || cur > hard {
		t.Fatalf("Raise(0) = %d (hard %d)", cur, hard)
	}
	if hard == ^uint64(0) {
		return // unlimited: nothing above it to ask for
	}
	// Asking for more than the hard limit gets the hard limit, not an error.
	if cur2, _, err := Raise(hard + 1); err != nil || cur2 != hard {
		t.Fatalf("Raise(hard+1) = %d, %v; want the hard limit %d", cur2, err, hard)
	}
}
