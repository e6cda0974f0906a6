//go:build !unix

package fdlimit

// Raise knows no open-file limit here: 0 means none is known, and Plan leaves every
// cluster's max_connections as configured.
func Raise(uint64) (cur, hard uint64, err error) { return 0, 0, nil }
