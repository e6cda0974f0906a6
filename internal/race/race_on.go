//go:build race

package race

// Enabled reports whether the race detector is built in: it makes sync.Pool drop items at
// random (allocation tests skip then) and the backend poison what a lent reply gave back.
const Enabled = true
