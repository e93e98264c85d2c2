package tcp

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/sluice-storage/sluice/protocols/nvme"
)

// TestAdminAndIO walks the life of a controller over a real socket with the test host: IC,
// admin Connect, properties, Identify, features, an I/O queue, every I/O command and the
// statuses of bad ones.
func TestAdminAndIO(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hd, dd bool
		sqFlow bool
	}{
		{"plain", false, false, true},
		{"digests", true, true, true},
		{"sqflow-off", false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := newTestTarget(t, targetConfig{})
			admin := adminSession(t, tt.addr, testNQN, tc.hd, tc.dd)
			checkAdmin(t, admin)
			io := ioSession(t, tt.addr, testNQN, admin.cntlid, 1, tc.hd, tc.dd, tc.sqFlow)
			checkIO(t, io)
			if !tc.sqFlow && io.successReads == 0 {
				t.Errorf("SQ flow control off: no read completed by C2HData SUCCESS")
			}
			if tc.sqFlow && io.successReads != 0 {
				t.Errorf("SQ flow control on: %d reads completed by SUCCESS, want 0", io.successReads)
			}
		})
	}
}

func checkAdmin(t *testing.T, h *testHost) {
	t.Helper()
	v, cqe := h.propGet(nvme.PropCAP, 8)
	h.mustOK(cqe, "get CAP")
	capf := nvme.CAP(v).Fields()
	if capf.MQES != 127 || !capf.CQR || capf.CSS&nvme.CAPCSSNVM == 0 {
		t.Errorf("CAP %+v, want MQES 127, CQR, NVM", capf)
	}
	v, cqe = h.propGet(nvme.PropVS, 4)
	h.mustOK(cqe, "get VS")
	if nvme.Version(v) != nvme.Version1_3 {
		t.Errorf("VS %#x, want 1.3", v)
	}
	if _, cqe := h.propGet(0x100, 4); cqe.Status() != nvme.StatusInvalidField {
		t.Errorf("property get of an undefined offset: %v, want invalid field", cqe.Status())
	}

	data, cqe := h.identify(nvme.CNSController, 0)
	h.mustOK(cqe, "identify controller")
	id := (*nvme.IdentifyController)(data)
	subnqn, _ := id.SubNQN()
	if subnqn != testNQN || id.SN() != "SLUICE0001" || id.CNTLID() != h.cntlid || id.IOCCSZ() != (64+8192)/16 ||
		id.ICDOFF() != 0 || id.SGLS()&3 == 0 || id.MDTS() != 5 || id.NN() != 1024 || id.CNTRLTYPE() != nvme.ControllerTypeIO {
		t.Errorf("identify controller: subnqn %q sn %q cntlid %d ioccsz %d icdoff %d sgls %#x mdts %d nn %d type %d",
			subnqn, id.SN(), id.CNTLID(), id.IOCCSZ(), id.ICDOFF(), id.SGLS(), id.MDTS(), id.NN(), id.CNTRLTYPE())
	}
	data, cqe = h.identify(nvme.CNSNamespace, 1)
	h.mustOK(cqe, "identify namespace")
	ns := (*nvme.IdentifyNamespace)(data)
	if ns.NSZE() != testBlocks || ns.BlockSize() != testBlockSize || ns.NMIC() != nvme.NMICShared {
		t.Errorf("identify namespace: nsze %d block %d nmic %d", ns.NSZE(), ns.BlockSize(), ns.NMIC())
	}
	data, cqe = h.identify(nvme.CNSActiveNSList, 0)
	h.mustOK(cqe, "active namespace list")
	if ids := (*nvme.NSList)(data).NSIDs(nil); len(ids) != 1 || ids[0] != 1 {
		t.Errorf("active namespaces %v, want [1]", ids)
	}
	data, cqe = h.identify(nvme.CNSNSDescriptors, 1)
	h.mustOK(cqe, "namespace descriptors")
	descs, err := (*nvme.NSDescList)(data).Descriptors()
	if err != nil || len(descs) != 2 || descs[0].Type != nvme.NIDTUUID {
		t.Errorf("namespace descriptors %v %v, want UUID and CSI", descs, err)
	}
	if _, cqe := h.identify(nvme.CNSNamespace, 5000); cqe.Status() != nvme.StatusInvalidNamespaceOrFormat || !cqe.DNR() {
		t.Errorf("identify of NSID 5000: %v dnr %v, want invalid namespace, DNR", cqe.Status(), cqe.DNR())
	}
	data, cqe = h.identify(nvme.CNSNamespace, 7) // in range, not attached: zeros
	h.mustOK(cqe, "identify inactive namespace")
	if !bytes.Equal(data, make([]byte, nvme.IdentifySize)) {
		t.Errorf("identify of an inactive NSID is not all zero")
	}

	cqe = h.features(true, nvme.FeatureNumberOfQueues, nvme.NumberOfQueues(4, 4))
	h.mustOK(cqe, "set number of queues")
	if sq, cq := nvme.QueueCounts(cqe.DW0()); sq != 4 || cq != 4 {
		t.Errorf("number of queues granted %d/%d, want 4/4", sq, cq)
	}
	h.mustOK(h.features(true, nvme.FeatureAsyncEventConfig, nvme.OAESNSAttribute), "set AEC")
	cqe = h.features(false, nvme.FeatureKeepAliveTimer, 0)
	h.mustOK(cqe, "get KATO")
	if cqe.DW0() != 30000 {
		t.Errorf("KATO %d ms, want 30000", cqe.DW0())
	}
	cqe = h.features(false, nvme.FeatureVolatileWriteCache, 0)
	h.mustOK(cqe, "get VWC")
	if cqe.DW0() != 1 {
		t.Errorf("VWC %d, want enabled", cqe.DW0())
	}
	if cqe := h.features(true, nvme.FeatureHostMemoryBuffer, 1); cqe.Status() != nvme.StatusInvalidField {
		t.Errorf("set host memory buffer: %v, want invalid field", cqe.Status())
	}
	// Temperature Threshold (mandatory; spdk_nvme_identify reads it): kept per selector.
	const over343K, allUnder250K = 343, 0xF<<16 | 1<<20 | 250
	h.mustOK(h.features(true, nvme.FeatureTemperatureThreshold, over343K), "set composite over-threshold")
	h.mustOK(h.features(true, nvme.FeatureTemperatureThreshold, allUnder250K), "set every under-threshold")
	for _, tc := range []struct {
		cdw11 uint32
		want  uint32
	}{{0, over343K}, {1 << 20, 1<<20 | 250}, {3<<16 | 1<<20, 3<<16 | 1<<20 | 250}, {3 << 16, 3 << 16}} {
		cqe := h.features(false, nvme.FeatureTemperatureThreshold, tc.cdw11)
		h.mustOK(cqe, "get temperature threshold")
		if cqe.DW0() != tc.want {
			t.Errorf("temperature threshold %#x: %#x, want %#x", tc.cdw11, cqe.DW0(), tc.want)
		}
	}
	for _, bad := range []uint32{2 << 20, 9 << 16} { // THSEL 10b, TMPSEL 9: reserved
		if cqe := h.features(true, nvme.FeatureTemperatureThreshold, bad); cqe.Status() != nvme.StatusInvalidField {
			t.Errorf("set temperature threshold %#x: %v, want invalid field", bad, cqe.Status())
		}
	}

	data, cqe = h.getLogPage(nvme.LogSMARTHealth, nvme.NSIDAll, nvme.SMARTLogSize, 0)
	h.mustOK(cqe, "SMART log")
	if (*nvme.SMARTLog)(data).AvailableSpare() != 100 {
		t.Errorf("SMART available spare %d, want 100", (*nvme.SMARTLog)(data).AvailableSpare())
	}
	_, cqe = h.getLogPage(nvme.LogErrorInfo, 0, 16*nvme.ErrorInfoSize, 0)
	h.mustOK(cqe, "error log")
	data, cqe = h.getLogPage(nvme.LogFirmwareSlot, 0, nvme.FirmwareSlotLogSize, 0)
	h.mustOK(cqe, "firmware slot log")
	if fw := (*nvme.FirmwareSlotLog)(data); fw.ActiveSlot() != 1 || fw.Revision(1) == "" {
		t.Errorf("firmware slot: active %d revision %q", fw.ActiveSlot(), fw.Revision(1))
	}
	if _, cqe := h.getLogPage(nvme.LogDiscovery, 0, 1024, 0); cqe.Status() != nvme.StatusInvalidLogPage {
		t.Errorf("discovery log on an I/O controller: %v, want invalid log page", cqe.Status())
	}

	var ka nvme.SQE
	ka.SetOpcode(uint8(nvme.AdminKeepAlive))
	cqe, _ = h.exec(&ka, nil, 0)
	h.mustOK(cqe, "keep alive")
	var bad nvme.SQE
	bad.SetOpcode(uint8(nvme.AdminCreateIOSQ))
	if cqe, _ := h.exec(&bad, nil, 0); cqe.Status() != nvme.StatusInvalidOpcode {
		t.Errorf("create I/O SQ: %v, want invalid opcode", cqe.Status())
	}
}

func checkIO(t *testing.T, h *testHost) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	// In capsule (<= 8 KiB), by R2T (larger), and one of MDTS.
	for _, blocks := range []uint32{1, 8, 16, 17, 64, 255, 256} {
		lba := uint64(rng.IntN(testBlocks - int(blocks)))
		want := make([]byte, int(blocks)*testBlockSize)
		for i := range want {
			want[i] = byte(rng.Uint32())
		}
		cqe, _ := h.rw(nvme.IOWrite, 1, lba, blocks, want, 0)
		h.mustOK(cqe, "write")
		cqe, got := h.rw(nvme.IORead, 1, lba, blocks, nil, len(want))
		h.mustOK(cqe, "read")
		if !bytes.Equal(got, want) {
			t.Fatalf("read %d blocks at %d: data differs from what was written", blocks, lba)
		}
		cqe, _ = h.rw(nvme.IOCompare, 1, lba, blocks, want, 0)
		h.mustOK(cqe, "compare equal")
		want[7] ^= 0xFF
		cqe, _ = h.rw(nvme.IOCompare, 1, lba, blocks, want, 0)
		if cqe.Status() != nvme.StatusCompareFailure {
			t.Errorf("compare of different data: %v, want compare failure", cqe.Status())
		}
	}
	var flush nvme.SQE
	flush.SetOpcode(uint8(nvme.IOFlush))
	flush.SetNSID(1)
	cqe, _ := h.exec(&flush, nil, 0)
	h.mustOK(cqe, "flush")

	// Write zeroes and deallocate read back as zeros (malloc: DLFEAT read zeroes).
	ones := bytes.Repeat([]byte{0xA5}, 8*testBlockSize)
	h.mustOK(first(h.rw(nvme.IOWrite, 1, 100, 8, ones, 0)), "write")
	var wz nvme.SQE
	wz.SetOpcode(uint8(nvme.IOWriteZeroes))
	wz.SetNSID(1)
	wz.SetSLBA(100)
	wz.SetBlockCount(4)
	h.mustOK(first(h.exec(&wz, nil, 0)), "write zeroes")
	var dsm nvme.SQE
	dsm.SetOpcode(uint8(nvme.IODatasetManagement))
	dsm.SetNSID(1)
	dsm.SetDSMRangeCount(2)
	dsm.SetDSMDeallocate(true)
	ranges := make([]byte, 2*nvme.DSMRangeSize)
	r0 := (*nvme.DSMRange)(ranges)
	r0.SetSLBA(104)
	r0.SetBlocks(2)
	r1 := (*nvme.DSMRange)(ranges[nvme.DSMRangeSize:])
	r1.SetSLBA(107)
	r1.SetBlocks(1)
	h.mustOK(first(h.exec(&dsm, ranges, 0)), "deallocate")
	cqe, got := h.rw(nvme.IORead, 1, 100, 8, nil, len(ones))
	h.mustOK(cqe, "read back")
	for b := 0; b < 8; b++ {
		blk := got[b*testBlockSize : (b+1)*testBlockSize]
		zero := b < 6 || b == 7
		if zero != bytes.Equal(blk, make([]byte, testBlockSize)) {
			t.Errorf("block %d after write zeroes 100+4 and deallocate 104+2, 107+1: zero %v, want %v", 100+b, !zero, zero)
		}
	}

	// Ordered checks end in the right status.
	for _, tc := range []struct {
		name string
		op   nvme.IOOpcode
		nsid uint32
		lba  uint64
		want nvme.Status
	}{
		{"past the end", nvme.IORead, 1, testBlocks - 1, nvme.StatusLBAOutOfRange},
		{"LBA overflow", nvme.IORead, 1, ^uint64(0), nvme.StatusLBAOutOfRange},
		{"no namespace", nvme.IORead, 2, 0, nvme.StatusInvalidNamespaceOrFormat},
		{"unknown opcode", nvme.IOOpcode(0x7E), 1, 0, nvme.StatusInvalidOpcode},
	} {
		var sqe nvme.SQE
		sqe.SetOpcode(uint8(tc.op))
		sqe.SetNSID(tc.nsid)
		sqe.SetSLBA(tc.lba)
		sqe.SetBlockCount(2)
		cqe, _ := h.exec(&sqe, nil, 2*testBlockSize)
		if cqe.Status() != tc.want || !cqe.DNR() {
			t.Errorf("%s: %v (dnr %v), want %v with DNR", tc.name, cqe.Status(), cqe.DNR(), tc.want)
		}
	}
	// A read whose SGL is shorter than NLB blocks.
	var short nvme.SQE
	short.SetOpcode(uint8(nvme.IORead))
	short.SetNSID(1)
	short.SetBlockCount(4)
	if cqe, _ := h.exec(&short, nil, 2*testBlockSize); cqe.Status() != nvme.StatusDataSGLLengthInvalid {
		t.Errorf("read with a short SGL: %v, want data SGL length invalid", cqe.Status())
	}
}

func first(cqe nvme.CQE, _ []byte) nvme.CQE { return cqe }

// TestDataPointerChecks: a command whose data pointer NVMe/TCP does not allow completes with
// the status that says why, and the connection goes on (NVMe/TCP 1.0, "Command Capsule": one
// SGL descriptor, in capsule at offset 0 or transport data block).
func TestDataPointerChecks(t *testing.T) {
	tt := newTestTarget(t, targetConfig{})
	admin := adminSession(t, tt.addr, testNQN, false, false)
	h := ioSession(t, tt.addr, testNQN, admin.cntlid, 1, false, false, true)
	send := func(mod func(*nvme.SQE), data []byte) nvme.CQE {
		var sqe nvme.SQE
		sqe.SetOpcode(uint8(nvme.IORead))
		sqe.SetNSID(1)
		sqe.SetBlockCount(1)
		h.cid++
		sqe.SetCID(h.cid)
		sqe.SetPSDT(nvme.PSDTSGL)
		sqe.SGL1().SetTransport(testBlockSize)
		mod(&sqe)
		var b [256]byte
		n := h.send.EncodeCapsuleCmd(b[:], (*[64]byte)(&sqe), uint32(len(data)))
		h.write(append(append([]byte(nil), b[:n]...), data...))
		cqe, _, _ := h.await(h.cid)
		return cqe
	}
	for _, tc := range []struct {
		name string
		mod  func(*nvme.SQE)
		data []byte
		want nvme.Status
	}{
		{"keyed SGL (RDMA)", func(s *nvme.SQE) { s.SGL1().SetIdentifier(nvme.SGLKeyedDataBlock, 0) }, nil, nvme.StatusSGLDescriptorTypeInvalid},
		{"SGL segment", func(s *nvme.SQE) { s.SGL1().SetIdentifier(nvme.SGLSegment, 0) }, nil, nvme.StatusSGLDescriptorTypeInvalid},
		{"PRP", func(s *nvme.SQE) { s.SetPSDT(nvme.PSDTPRP) }, nil, nvme.StatusInvalidField},
		{"in-capsule offset", func(s *nvme.SQE) {
			s.SetOpcode(uint8(nvme.IOWrite))
			s.SGL1().SetInCapsule(testBlockSize)
			s.SGL1().SetAddress(16)
		}, make([]byte, testBlockSize), nvme.StatusSGLOffsetInvalid},
		{"in-capsule data shorter than its SGL", func(s *nvme.SQE) {
			s.SetOpcode(uint8(nvme.IOWrite))
			s.SGL1().SetInCapsule(2 * testBlockSize)
		}, make([]byte, testBlockSize), nvme.StatusDataSGLLengthInvalid},
		{"in-capsule data for a read", func(s *nvme.SQE) { s.SGL1().SetInCapsule(testBlockSize) },
			make([]byte, testBlockSize), nvme.StatusInvalidField},
		{"beyond MDTS", func(s *nvme.SQE) { s.SGL1().SetTransport(256 << 10) }, nil, nvme.StatusDataSGLLengthInvalid},
	} {
		if cqe := send(tc.mod, tc.data); cqe.Status() != tc.want || !cqe.DNR() {
			t.Errorf("%s: %v (dnr %v), want %v with DNR", tc.name, cqe.Status(), cqe.DNR(), tc.want)
		}
	}
	h.mustOK(first(h.rw(nvme.IORead, 1, 0, 1, nil, testBlockSize)), "read after the refusals")
}
