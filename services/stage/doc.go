// Package stage is what every data service has in common: a stage is a bdev
// built on base bdevs, registered with bdev.Registry.Add, with one instance
// per reactor (its bdev.ChannelBackend) owned by that reactor. This package
// opens and claims a stage's bases, makes the child IO a stage sends down for
// the IO it was handed, ends the upper IO with the child's status, and keeps
// the list of live stages that cmd/sluice and the debug endpoint read.
//
// # Owners
//
//   - Bases: the control plane opens and claims them when the stage is made
//     and closes them when the stage's back end is closed (after the bdev
//     layer closed every channel of the stage).
//   - Child IOs: the reactor that got the upper IO; a child comes from that
//     reactor's pool and is submitted on that reactor's base channel, so its
//     completion runs there too (bdev B3) and nothing crosses cores.
//   - List: the control plane; its mutex guards only the list.
//
// # Invariants
//
//	S1. A stage owns its bases: each base descriptor is a write descriptor
//	    claimed by the stage (bdev.Registry.Claim), so nothing else writes
//	    under it, and the bdev layer refuses to delete a base while the stage
//	    that sits on it exists.
//	S2. An upper IO completes exactly once, after every child it sent down
//	    has completed, with the first failure's status and detail or success.
//	S3. A child carries no lock of the upper bdev (IO.Lock is nil): upper
//	    range locks are enforced by the upper channel before the stage sees
//	    the IO.
//	S4. Out of child IOs, a stage completes the upper IO with
//	    bdev.StatusNoResources: the upper channel parks and resubmits it
//	    (bdev B5). Never a wait, never a drop.
//	S5. Nothing on the submit and complete path allocates: children are
//	    pooled IOs, completers are methods on per-channel or pooled objects.
//
// # Imports
//
// services/bdev, reactors and actors (the debug Source), as ARCHITECTURE.md's
// table lets a service.
package stage
