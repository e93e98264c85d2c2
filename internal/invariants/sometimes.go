package invariants

import "math/rand/v2"

// Sometimes reports true about percent of the time when Enabled, and never
// otherwise. Tests use it to take rare paths (a short socket read, a full
// ring) often enough to be exercised.
func Sometimes(percent int) bool {
	return Enabled && rand.IntN(100) < percent
}
