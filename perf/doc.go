// Package perf is Sluice's load generator. RunBdev is SPDK bdevperf's job:
// it builds a bdev stack from a topology inside this process, runs one job
// per reactor with a fixed number of IOs outstanding (a closed loop: each
// completion submits the next), and reports IOPS, MiB/s and latency
// percentiles per core and in total, as text or JSON. Its verify workload
// writes blocks that carry their LBA, a generation and an xxhash, and checks
// all three on every read.
//
// Owners: RunBdev's goroutine is the control plane (it starts the reactors,
// creates the bdevs, prints progress and the report); each job belongs to its
// reactor and touches nothing else. A job publishes its IO count with an
// atomic store every publishEvery completions for the progress line; all its
// other state is read only after it has signalled that it finished.
//
// Invariants:
//
//	P1. A job keeps exactly QueueDepth IOs outstanding until its deadline,
//	    then submits nothing and finishes when the last completes.
//	P2. Nothing on a job's IO path allocates: tasks, IOs and buffers are
//	    made before the first submit; latency goes to a fixed histogram.
//	P3. In verify mode no two IOs of one job are outstanding on the same
//	    block (a slot is busy from its write until its read is checked), jobs
//	    own disjoint ranges, and a read expects the generation of the last
//	    write that completed on its slot.
//	P4. Every verify read checks each block's magic, LBA, generation and
//	    xxhash; the first mismatch stops the run and is reported with its LBA.
//
// perf may import everything (ARCHITECTURE.md's table); it imports conf for
// topologies and services/bdev for the stack. Drivers are registered by the
// caller (BdevOptions.Register), never by init().
package perf
