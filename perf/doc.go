// Package perf is Sluice's load generator. RunBdev is SPDK bdevperf's job:
// it builds a bdev stack from a topology inside this process, runs one job
// per reactor with a fixed number of IOs outstanding (a closed loop: each
// completion submits the next), and reports IOPS, MiB/s and latency
// percentiles per core and in total, as text or JSON. Its verify workload
// writes blocks that carry their LBA, a generation and an xxhash, and checks
// all three on every read; with a state file it carries the generations
// across runs, so a restart proves what the last one acknowledged is there.
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
//	P5. A verify state file (--verify-state; state.go) records a block at a
//	    generation only once a write of it was acknowledged (completed with
//	    success), and only after a flush of the bdev completed. A write that
//	    failed is recorded as pending beside the last acknowledged
//	    generation: the block may hold either. A signal stops the jobs, which
//	    finish the IOs they have outstanding before the state is taken, so at
//	    a clean save no write is in flight; a job that never finishes (a hung
//	    back end) or a failed flush leaves the file at its dirty save.
//	P6. A read-back checks every recorded block's magic, LBA and hash, then
//	    its generation: exactly the recorded or pending one after a clean
//	    save; at least the recorded one after a dirty save (written before
//	    the run's first write, so a run killed later has only raised them).
//	    Every mismatch is counted and the run stops before writing anything.
//	P7. Generations only grow: a run continues each slot from the highest
//	    generation the read-back found on its blocks, and a slot whose blocks
//	    differ is written before it is read.
//
// perf may import everything (ARCHITECTURE.md's table); it imports conf for
// topologies and services/bdev for the stack. Drivers are registered by the
// caller (BdevOptions.Register), never by init().
package perf
