//go:build invariants || race

package invariants

// Enabled is true: the build asked for costly self-checks.
const Enabled = true
