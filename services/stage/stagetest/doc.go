// Package stagetest helps the stages' tests: a stack of reactors and a
// registry with a RAM driver, stages built over it, seeded op streams run on
// a stage and on a plain reference bdev (bdevtest's metamorphic histories),
// and a closed loop on one reactor for allocation counts and benchmarks.
//
// Owner: the test goroutine, which waits for reactors. Tests only: it
// blocks and allocates.
package stagetest
