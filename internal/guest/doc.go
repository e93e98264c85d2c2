// Package guest boots Debian's stock Linux kernel under QEMU as a real peer
// for interop tests: the kernel's nvme-tcp initiator and nvmet target, the
// iSCSI initiator and LIO target, vfio-pci over an emulated NVMe controller,
// virtio-blk over vhost-user. The host kernel of our machines has none of
// these and cannot load modules; a guest of our own does, boots in a few
// seconds under TCG, and needs nothing installed but QEMU.
//
// It is for tests only (ARCHITECTURE.md) and imports nothing of ours.
//
// What it owns:
//
//   - The cache ($SLUICE_GUEST_CACHE, default os.UserCacheDir()/sluice-guest):
//     the kernel package fetched with apt-get download (never installed), the
//     uncompressed vmlinux extracted from its bzImage (QEMU boots that ELF
//     through its PVH entry, seconds faster than a bzImage under TCG), and
//     the base initramfs: static busybox, the modules of baseModules with
//     their dependencies, a few /etc files and /init (init.sh, embedded).
//     Debian packages that tests ask for are unpacked under debs/.
//   - The QEMU processes it starts: one per Start or Run, with its own
//     process group, killed and reaped on every path out.
//
// A run: Prepare (cached after the first call) → a per-run initramfs, the
// base archive followed by a second one holding the agent, its arguments,
// files, package programs and their libraries → QEMU (q35, virtio-net on
// user networking, serial console on a pipe) → /init loads drivers for the
// devices present and Options.Modules, configures eth0 as 10.0.2.15 (the
// host's 127.0.0.1 is 10.0.2.2), prints the ready marker, runs /agent, prints
// the exit marker with the agent's status and powers off. Run returns that
// status; Start returns a Guest whose Ready, Send and Stop let a test drive a
// long-running agent (a reference target) from the host.
//
// Environment variables:
//
//	SLUICE_GUEST_CACHE           cache directory
//	SLUICE_GUEST_KERNEL_PKG      kernel package to use (default: what
//	                             linux-image-amd64 depends on, resolved once
//	                             and remembered in the cache)
//	SLUICE_GUEST_EXTRA_MODULES   more modules for the base initramfs
//	                             (comma or space separated)
//	SLUICE_GUEST_ACCEL           tcg (default) or kvm
//	CI                           "true": Require fails instead of skipping
//
// Invariants:
//
//	G1. A cache entry exists under its final name only when complete: each is
//	    built under a temporary name and renamed into place, so readers need
//	    no lock; builders hold the flock on .lock.
//	G2. Every QEMU started is reaped before Wait (and Run) returns, and is
//	    killed when its context or Options.Timeout ends, on Stop, and with the
//	    thread that started it (Pdeathsig).
//	G3. Only a console line with the run's nonce is a marker: an agent's
//	    output, or another guest's, is never read as an exit status.
//	G4. The base initramfs's name is a hash of everything in it (kernel
//	    package, module list, init.sh, busybox, baseFormat): a change to any
//	    of them builds a new base rather than reusing a stale one.
package guest
