package proxy

// SetPanicHook makes sessions call f with every unknown command they handle (nil: none), so
// that a test can make one panic. Set it before the cluster serves, reset it after it closed.
func SetPanicHook(f func(args [][]byte)) { testPanicHook = f }
