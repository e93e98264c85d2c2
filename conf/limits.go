package conf

import "time"

// Limits of the schema. Each is a named rule a file is checked against; a value
// outside one is rejected, never clamped (C5).
const (
	// FileSizeMax bounds what Load reads and Parse accepts. BdevsMax bdevs at
	// ~200 bytes each fit with room to spare; a larger file is a mistake (or
	// /dev/zero), and the bound keeps Load from reading without end.
	FileSizeMax = 1 << 20

	// CoresMax bounds CPU ids: a reactor pins itself with sched_setaffinity,
	// whose set (glibc's CPU_SETSIZE, x/sys/unix.CPUSet) holds 1024 CPUs.
	CoresMax = 1024

	// BdevsMax bounds the bdevs of one file. Each bdev gets a channel per
	// reactor at start (BdevsMax*CoresMax channels at worst); more than this
	// in a hand-written or saved topology is a generator gone wrong.
	BdevsMax = 1024

	// NameLenMax bounds a bdev (or stage) name. Names appear in logs, metric
	// labels, RPC replies and NQNs; 64 holds a UUID (36) with a prefix and
	// still fits one column of the debug endpoint.
	NameLenMax = 64

	// BlockSizeMin and BlockSizeMax bound a bdev's logical block size: 512 and
	// 4096 are the sizes NVMe namespaces and SCSI LUNs expose in practice, and
	// Linux initiators need the logical block size to be at most the page
	// size (4096 on x86-64 and most arm64 kernels).
	BlockSizeMin = 512
	BlockSizeMax = 4096

	// SizeMax bounds every size in bytes. Offsets are int64 (off_t, io_uring's
	// off, os.File.ReadAt), and offset+length of two in-range values must not
	// overflow: 1 EiB leaves that headroom and exceeds any device.
	SizeMax Size = 1 << 60

	// IdleAfterMin and IdleAfterMax bound reactors.idle_after. Below 10µs the
	// epoll_wait round trip (a few µs) costs about what sleeping saves; above
	// 10s a reactor practically never sleeps, which is what mode: poll is for.
	IdleAfterMin = 10 * time.Microsecond
	IdleAfterMax = 10 * time.Second

	// IdleAfterDefault: a reactor quiet for 1ms is idle at any load worth
	// polling for (requests of a busy queue arrive far closer together), and
	// the few µs of a wake-up are then under 1% of the idle period.
	IdleAfterDefault = time.Millisecond

	// UnixPathMax bounds rpc.listen: sockaddr_un.sun_path is 108 bytes on
	// Linux, including the terminating NUL.
	UnixPathMax = 107

	// PathLenMax bounds a bdev's path: PATH_MAX is 4096 bytes including the
	// terminating NUL.
	PathLenMax = 4095

	// sizeTextMax bounds the text of one size. The longest exact size anyone
	// writes is a fraction like 0.0009765625MiB; 64 leaves room and keeps the
	// exact arithmetic on it cheap, whatever a file holds.
	sizeTextMax = 64

	// errorsMax bounds the problems one result lists: past a screenful the
	// file is of the wrong kind, and more lines would bury the first.
	errorsMax = 200
)

// Defaults the file format fills for what a file leaves out (C1).
const (
	// RPCListenDefault is SPDK's /var/tmp/spdk.sock renamed: operators look
	// for the socket there.
	RPCListenDefault = "/var/tmp/sluice.sock"

	// DebugListenDefault is loopback only: the endpoint serves pprof and
	// internals, which must not reach the network unless a file says so.
	DebugListenDefault = "127.0.0.1:9390"

	// BlockSizeDefault is for malloc and null bdevs: 512 is what every
	// initiator and tool handles.
	BlockSizeDefault Size = 512

	// BlockSizeDefaultUring: O_DIRECT I/O must be aligned to the logical block
	// size of the device under the file, which is 512 or 4096; 4096 suits both.
	BlockSizeDefaultUring Size = 4096
)

// Fails to compile unless the limits fit together.
const (
	_ uint  = BlockSizeMax - BlockSizeMin // an ordered range
	_ Size  = -(SizeMax % BlockSizeMax)   // SizeMax is whole blocks
	_ Size  = -(SizeMax % (1 << 10))      // and whole KiB, so it prints exactly
	_ int64 = int64(SizeMax) * 4          // offset+length never overflows int64
	_ uint  = uint(IdleAfterMax - IdleAfterDefault)
	_ uint  = uint(IdleAfterDefault - IdleAfterMin)
	_ uint  = BlockSizeMax - uint(BlockSizeDefaultUring)
	_ uint  = uint(BlockSizeDefault) - BlockSizeMin
)
