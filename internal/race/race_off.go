//go:build !race

// Package race says whether the binary or test was built with the race detector.
package race

const Enabled = false
