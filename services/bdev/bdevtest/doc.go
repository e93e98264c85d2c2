// Package bdevtest helps tests drive bdevs: a reactor set with a registry,
// synchronous IO from the test goroutine, and seeded op streams whose
// histories two stacks must produce alike (STYLE.md's metamorphic tests).
//
// Owner: the test goroutine; every IO runs on a reactor of the stack and the
// test waits for it. Tests only: it blocks, allocates and uses the Go heap.
package bdevtest
