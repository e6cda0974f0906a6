//go:build unix

package fdlimit

import "syscall"

// Raise lifts the soft open-file limit to want when it is lower, up to the hard limit (the Go
// runtime itself starts at the hard limit on Linux, so this mostly reads), and returns the
// limit in force afterwards and the hard limit. err is set when the limit could not be read
// or set; cur is then what is in force (0 if unknown).
func Raise(want uint64) (cur, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, err
	}
	cur, hard = uint64(lim.Cur), uint64(lim.Max)
	if cur >= want || cur >= hard {
		return cur, hard, nil
	}
	next := lim
	setLimit(&next.Cur, min(want, hard))
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err != nil {
		return cur, hard, err
	}
	return uint64(next.Cur), hard, nil
}

// setLimit sets an Rlimit field, whose type is uint64 on Linux and macOS but int64 on the BSDs
// (whose RLIM_INFINITY is the largest int64: still the largest limit as a uint64 above).
func setLimit[T int64 | uint64](f *T, v uint64) { *f = T(v) }
