//go:build race

package crypto

// raceEnabled: the race detector makes sync.Pool drop items on purpose, and
// x/crypto/xts takes its tweak from one, so allocation counts mean nothing.
const raceEnabled = true
