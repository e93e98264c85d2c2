package uring

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrUnavailable is wrapped by every error that means io_uring cannot be used
// on this host at all (as opposed to a bad argument); the message names the
// cause and what to change.
var ErrUnavailable = errors.New("io_uring unavailable")

// The sysctls an EPERM explanation quotes.
const (
	procIOUringDisabled = "/proc/sys/kernel/io_uring_disabled" // Linux 6.6+
	procIOUringGroup    = "/proc/sys/kernel/io_uring_group"
)

// Supported reports whether this process can use io_uring the way this
// package does, and if not, why, in words an operator can act on: the driver
// prints it as is. It sets up and closes a one-entry ring, then checks the
// kernel supports every opcode the prep helpers emit (IORING_REGISTER_PROBE)
// and keeps completions on overflow (IORING_FEAT_NODROP). Any thread may call
// it.
func Supported() error {
	var p params
	fd, errno := sysSetup(1, &p)
	if errno != 0 {
		return fmt.Errorf("uring: %w: io_uring_setup: %w: %s",
			ErrUnavailable, errno, explainSetup(errno, 0, readHostFacts()))
	}
	defer unix.Close(fd)
	if p.u32(offParamsFeatures)&FeatNoDrop == 0 {
		return fmt.Errorf("uring: %w: kernel %s lacks IORING_FEAT_NODROP: it drops completions "+
			"when the CQ is full; Linux 5.6 or later is needed", ErrUnavailable, kernelRelease())
	}
	pr, errno := probeOps(fd)
	if errno != 0 {
		return fmt.Errorf("uring: %w: IORING_REGISTER_PROBE: %w: kernel %s cannot list its "+
			"opcodes (Linux 5.6 or later is needed)", ErrUnavailable, errno, kernelRelease())
	}
	var missing []string
	for _, op := range opsRequired {
		if !pr.supports(op) {
			missing = append(missing, "IORING_OP_"+op.String())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("uring: %w: kernel %s lacks %s (Linux 5.6 or later has them)",
			ErrUnavailable, kernelRelease(), strings.Join(missing, ", "))
	}
	return nil
}

// setupError is New's error when io_uring_setup failed on every rung.
func setupError(entries, flags uint32, errno unix.Errno) error {
	why := explainSetup(errno, flags, readHostFacts())
	if errno == unix.EINVAL {
		return fmt.Errorf("uring: io_uring_setup(entries %d, flags %#x): %w: %s", entries, flags, errno, why)
	}
	return fmt.Errorf("uring: %w: io_uring_setup(entries %d, flags %#x): %w: %s",
		ErrUnavailable, entries, flags, errno, why)
}

// hostFacts is what the explanations quote, gathered once per failure so
// explainSetup stays a pure function a table test can drive.
type hostFacts struct {
	release  string      // uname -r
	disabled string      // contents of io_uring_disabled; "" if absent or unreadable
	group    string      // contents of io_uring_group; "" if absent
	memlock  unix.Rlimit // RLIMIT_MEMLOCK
}

func readHostFacts() hostFacts {
	return hostFacts{
		release:  kernelRelease(),
		disabled: readSysctl(procIOUringDisabled),
		group:    readSysctl(procIOUringGroup),
		memlock:  readMemlock(),
	}
}

func readSysctl(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func readMemlock() unix.Rlimit {
	var l unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &l); err != nil {
		return unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	}
	return l
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "(uname failed)"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// explainSetup turns io_uring_setup's errno into the cause and the fix.
func explainSetup(errno unix.Errno, flags uint32, h hostFacts) string {
	switch errno {
	case unix.ENOSYS:
		return fmt.Sprintf("kernel %s has no io_uring system calls: it predates Linux 5.1, "+
			"was built without CONFIG_IO_URING, or a seccomp filter answers ENOSYS for them "+
			"(container runtimes do for system calls their profile blocks)", h.release)
	case unix.EPERM:
		if flags&SetupSQPoll != 0 {
			return "SQPOLL needs CAP_SYS_ADMIN before Linux 5.11; leave Options.SQPoll off"
		}
		return explainEPERM(h)
	case unix.ENOMEM:
		return memlockHint(h.memlock)
	case unix.EMFILE, unix.ENFILE:
		return "no file descriptor left for the ring (RLIMIT_NOFILE, or the system-wide file-max)"
	case unix.EINVAL:
		return fmt.Sprintf("kernel %s refused the parameters; it may predate a flag in %#x", h.release, flags)
	}
	return fmt.Sprintf("kernel %s", h.release)
}

func explainEPERM(h hostFacts) string {
	switch h.disabled {
	case "2":
		return procIOUringDisabled + " is 2: io_uring is disabled for every process; " +
			"set it to 0 (sysctl -w kernel.io_uring_disabled=0)"
	case "1":
		group := h.group
		if group == "" {
			group = "(unset)"
		}
		return procIOUringDisabled + " is 1: only processes with CAP_SYS_ADMIN or in group " +
			group + " (" + procIOUringGroup + ") may create rings; run with one of those, " +
			"or set the sysctl to 0"
	case "0":
		return procIOUringDisabled + " is 0, so a seccomp filter or an LSM policy denies " +
			"io_uring_setup (the default seccomp profiles of Docker, containerd and " +
			"Kubernetes block io_uring): allow io_uring_setup, io_uring_enter and io_uring_register"
	}
	return procIOUringDisabled + " (Linux 6.6+) is absent or unreadable, so a seccomp filter " +
		"or an LSM policy denies io_uring_setup (the default seccomp profiles of Docker, " +
		"containerd and Kubernetes block io_uring): allow io_uring_setup, io_uring_enter and " +
		"io_uring_register"
}

// memlockHint explains ENOMEM: kernels before 5.12 charge ring memory, and
// all kernels charge registered buffers, to RLIMIT_MEMLOCK.
func memlockHint(l unix.Rlimit) string {
	return fmt.Sprintf("locked memory exhausted: RLIMIT_MEMLOCK is %s soft, %s hard; kernels before "+
		"5.12 charge ring memory to it and all charge registered buffers; raise it (ulimit -l, "+
		"LimitMEMLOCK= in a systemd unit) or grant CAP_IPC_LOCK",
		limitString(l.Cur), limitString(l.Max))
}

func limitString(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10) + " bytes"
}
