//go:build !race

package backend

const poisonReturned = false
