//go:build race

package backend

// poisonReturned: what a lease gives back is overwritten (see poison).
const poisonReturned = true
