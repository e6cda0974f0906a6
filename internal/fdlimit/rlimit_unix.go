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
	if lim.Cur >= want || lim.Cur >= lim.Max {
		return lim.Cur, lim.Max, nil
	}
	next := lim
	next.Cur = min(want, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err != nil {
		return lim.Cur, lim.Max, err
	}
	return next.Cur, lim.Max, nil
}
