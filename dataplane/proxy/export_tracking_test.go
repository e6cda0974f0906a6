package proxy

// SetTrackMaxSessionKeys lowers the keys one tracking session remembers, for a test of the
// bound; it returns the old value.
func SetTrackMaxSessionKeys(n int) int {
	old := trackMaxSessionKeys
	trackMaxSessionKeys = n
	return old
}
