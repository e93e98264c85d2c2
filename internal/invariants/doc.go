// Package invariants holds the switch for costly self-checks.
//
// Enabled is a constant: true under `-tags invariants` or `-race`, false in a
// release build, so a check guarded by it compiles away. Cheap O(1) checks on
// state transitions (completed twice, push onto a full ring) are always on and
// do not use this package; walks, owner-thread checks and buffer poisoning do.
//
// It imports only the standard library, so every layer may use it.
package invariants
