package redistest

import (
	"sync"
	"testing"
)

// TestFreePortNeverRepeats: ports handed out to tests running side by side are distinct,
// though each is free again at once (drawn at random among some 20,000 ports, or offered by
// the kernel among some 14,000, 2,000 draws repeat one almost surely).
func TestFreePortNeverRepeats(t *testing.T) {
	const workers, each = 8, 250
	var mu sync.Mutex
	seen := map[int]bool{}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				p := FreePort(t)
				mu.Lock()
				if seen[p] {
					t.Errorf("port %d handed out twice", p)
				}
				seen[p] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if _, err := freeClusterPort(); err != nil {
		t.Fatal(err)
	}
}
