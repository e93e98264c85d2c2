package nvmf

import (
	"time"

	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/services/bdev"
)

// Limits. Each is a named rule with its reason; options outside them are rejected, never
// clamped (STYLE.md).
const (
	// QueueDepthLimit bounds any configured queue depth: requests, in-capsule buffers and send
	// queue slots are arrays of this many per connection, made at connect; 1024 entries is
	// already past the point where a deeper TCP queue adds throughput.
	QueueDepthLimit = 1024
	// AdminQueueDepthMin: a fabrics admin queue holds at least 32 entries (NVMe-oF 1.1,
	// "Discovery Log Page Entry", ASQSZ; Linux connects with NVME_AQ_DEPTH 32).
	AdminQueueDepthMin = 32
	// QueueDepthMin: SQSIZE 1 (a two-entry queue) is the smallest Connect allows.
	QueueDepthMin = 2

	// InCapsuleDataMin is the least in-capsule data an I/O queue takes. 0 would leave no
	// room for the 1024-byte Connect data in capsule, which Linux sends in capsule only when
	// it fits; anything smaller than a page defeats the point of in-capsule writes.
	InCapsuleDataMin = 4096
	// AdminInCapsuleDataSize is what every admin queue accepts in capsule: Linux sends up to
	// NVME_TCP_ADMIN_CCSZ (8192) bytes in capsule on the admin queue whatever IOCCSZ says.
	AdminInCapsuleDataSize = 8192
	// InCapsuleDataMax bounds in_capsule_data_size: per-connection buffers are queue depth
	// times this, mapped at connect; 64 KiB keeps a deep queue's buffers in megabytes.
	InCapsuleDataMax = 64 << 10

	// MaxIOSizeMin is one 4 KiB page (MDTS 0 would mean "no limit", which we never offer).
	MaxIOSizeMin = 4096
	// MaxIOSizeLimit is the largest transfer one command may carry: a request's data is one
	// contiguous buffer from the reactor's large bdev pool, whose buffers are this size.
	MaxIOSizeLimit = bdev.BufLargeSizeDefault
	// mdtsPageSize is CAP.MPSMIN's page, the unit of MDTS: 4 KiB (MPSMIN 0).
	mdtsPageSize = 4096

	// IOQpairsPerCtrlrMax bounds max_io_qpairs_per_ctrlr: QIDs are an array per controller;
	// 1023 queues is more than any host asks for (Linux asks one per CPU).
	IOQpairsPerCtrlrMax = 1023

	// NamespacesMax bounds a subsystem's namespaces: one Active Namespace List (Identify CNS
	// 02h) holds 1024 NSIDs, and NSIDs index an array per subsystem.
	NamespacesMax = nvme.NSListCountMax

	// SubsystemsMax bounds the subsystems of one target: each is a discovery log entry per
	// listener, and the page is built per read.
	SubsystemsMax = 1024
	// ListenersPerSubsystemMax bounds one subsystem's listeners, for the same reason.
	ListenersPerSubsystemMax = 64
	// HostsPerSubsystemMax bounds an allow list: it is scanned at each Connect.
	HostsPerSubsystemMax = 1024

	// CNTLIDMin and CNTLIDMax are the dynamic controller IDs a subsystem hands out (NVMe-oF
	// 1.1: FFF0h..FFFFh are reserved; 0 is avoided as SPDK and Linux do).
	CNTLIDMin = 1
	CNTLIDMax = 0xFFEF

	// SerialNumberLenMax and ModelNumberLenMax are the Identify Controller SN and MN fields.
	SerialNumberLenMax = 20
	ModelNumberLenMax  = 40

	// aerOutstandingMax Asynchronous Event Requests are held per controller (AERL+1); Linux
	// keeps one outstanding, 4 leaves room for other hosts.
	aerOutstandingMax = 4
	// aerEventsMax events wait for an AER; one per kind we raise is enough, more are merged.
	aerEventsMax = 8
	// abortOutstandingMax Abort commands may run at once (ACL+1, 0's based in Identify).
	abortOutstandingMax = 4
	// errorLogEntries is the Error Information log's depth (ELPE+1): the last 16 failures.
	errorLogEntries = 16

	// KeepAliveGranularityDefault is KAS: KATO is rounded up to a multiple of it (NVMe Base
	// 2.0, "Keep Alive Timer"); SPDK's default kas of 10 (x 100 ms).
	KeepAliveGranularityDefault = time.Second
	// kasUnit is the unit of the Identify KAS field.
	kasUnit = 100 * time.Millisecond
	// KeepAliveTimeoutMinDefault: a host asking for a shorter KATO gets this (SPDK's
	// min_kato); a loaded host's keep-alives are late by more than a few seconds.
	KeepAliveTimeoutMinDefault = 10 * time.Second
	// KeepAliveTimeoutMaxDefault: a KATO beyond it is refused at Connect; a host that has
	// been silent an hour is gone, and its controller holds a CNTLID and namespaces.
	KeepAliveTimeoutMaxDefault = time.Hour
	// discoveryKATO applies to a discovery controller that asked for none (NVMe-oF 1.1: a
	// discovery controller is torn down two minutes after its host goes quiet).
	discoveryKATO = 2 * time.Minute

	// readyTimeout is CAP.TO: how long a host waits for CSTS.RDY to follow CC.EN, in 500 ms
	// units; we answer at once, or after I/O queues disconnect on a reset.
	readyTimeout = 30 // 15 s

	// drainPollPeriod is how often a namespace removal checks a reactor's in-flight count.
	drainPollPeriod = time.Millisecond
)

// Fails to compile unless the limits fit together.
const (
	_ uint = AdminInCapsuleDataSize - nvme.ConnectDataSize // Connect data fits the admin queue
	_ uint = InCapsuleDataMin - nvme.ConnectDataSize       // and every I/O queue
	_ uint = InCapsuleDataMax - AdminInCapsuleDataSize
	_ uint = MaxIOSizeLimit - InCapsuleDataMax
	_ uint = QueueDepthLimit - AdminQueueDepthMin
	_ uint = 0xFFFF - QueueDepthLimit // MQES is 16 bits
	_ uint = CNTLIDMax - CNTLIDMin
)
