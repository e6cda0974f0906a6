package backend

// SetMaxAbandoned changes the bound on owed replies for a test; the returned func restores it.
func SetMaxAbandoned(n int) (restore func()) {
	old := maxAbandoned
	maxAbandoned = n
	return func() { maxAbandoned = old }
}
