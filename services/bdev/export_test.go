package bdev

import "time"

// SetRemoveWait shortens Delete's wait for notified openers; it returns
// the old value.
func SetRemoveWait(d time.Duration) time.Duration {
	old := removeWait
	removeWait = d
	return old
}
