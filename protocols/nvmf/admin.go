package nvmf

import (
	"time"

	"github.com/sluice-storage/sluice/protocols/nvme"
)

// execAdmin runs an admin command (not a fabrics one) on the controller's reactor, after the
// ordered checks: not torn down, enabled, offered by this kind of controller.
func (c *Controller) execAdmin(req *Request) {
	q := c.admin
	op := nvme.AdminOpcode(req.Cmd.Opcode())
	switch {
	case c.destructing:
		q.complete(req, nvme.StatusAbortedSQDeletion, false)
		return
	case !c.cc.Fields().EN || !c.csts.Fields().RDY:
		// NVMe Base 2.0, "Controller Initialization": admin commands need CC.EN and RDY.
		q.complete(req, nvme.StatusCommandSequenceError, true)
		return
	case req.Cmd.FUSE() != nvme.FuseNone:
		q.complete(req, nvme.StatusInvalidField, true)
		return
	case c.discovery && !discoveryAdminOpcodes[op]:
		// NVMe-oF 1.1, "Discovery Controller": a reduced admin command set.
		q.complete(req, nvme.StatusInvalidOpcode, true)
		return
	}
	switch op {
	case nvme.AdminIdentify:
		c.identify(req)
	case nvme.AdminGetLogPage:
		c.getLogPage(req)
	case nvme.AdminGetFeatures:
		c.getFeatures(req)
	case nvme.AdminSetFeatures:
		c.setFeatures(req)
	case nvme.AdminAsyncEventReq:
		c.asyncEventRequest(req)
	case nvme.AdminKeepAlive:
		c.lastAlive = c.owner.Clock().Now()
		q.complete(req, nvme.StatusSuccess, false)
	case nvme.AdminAbort:
		c.abort(req)
	default:
		// Queue creation and deletion do not exist on fabrics (queues are Connects); namespace
		// management, format, firmware and security are not offered.
		q.complete(req, nvme.StatusInvalidOpcode, true)
	}
}

// discoveryAdminOpcodes are the admin commands a discovery controller takes.
var discoveryAdminOpcodes = map[nvme.AdminOpcode]bool{
	nvme.AdminIdentify: true, nvme.AdminGetLogPage: true, nvme.AdminGetFeatures: true,
	nvme.AdminSetFeatures: true, nvme.AdminAsyncEventReq: true, nvme.AdminKeepAlive: true,
}

// identify answers Identify (NVMe Base 2.0, "Identify command") for the CNS values a fabrics
// host uses: controller, namespace, active namespace list, namespace identification
// descriptors.
func (c *Controller) identify(req *Request) {
	q := c.admin
	if req.Xfer != nvme.DataFromCtrl {
		q.complete(req, nvme.StatusInvalidField, true)
		return
	}
	nsid := req.Cmd.NSID()
	buf := &c.scratch
	clear(buf[:])
	switch req.Cmd.CNS() {
	case nvme.CNSController:
		c.identifyController((*nvme.IdentifyController)(buf))
	case nvme.CNSNamespace:
		if c.discovery {
			q.complete(req, nvme.StatusInvalidField, true)
			return
		}
		if nsid == 0 || nsid == nvme.NSIDAll || nsid > c.subsys.maxNS {
			q.complete(req, nvme.StatusInvalidNamespaceOrFormat, true)
			return
		}
		if ns := c.subsys.namespace(nsid); ns != nil {
			ns.identify((*nvme.IdentifyNamespace)(buf))
		} // an inactive NSID in range reads as zeros (NVMe Base 2.0, "Identify Namespace")
	case nvme.CNSControllerIOCS, nvme.CNSNamespaceIOCS:
		// The NVM command set's own structures (NVM Command Set 1.0, "I/O Command Set
		// Specific Identify Controller/Namespace"): no limits to report, so all zero. Linux
		// asks for the controller one at init.
		if c.discovery || req.Cmd.CSI() != 0 {
			q.complete(req, nvme.StatusInvalidField, true)
			return
		}
		if req.Cmd.CNS() == nvme.CNSNamespaceIOCS && c.subsys.namespace(nsid) == nil {
			q.complete(req, nvme.StatusInvalidNamespaceOrFormat, true)
			return
		}
	case nvme.CNSActiveNSList, nvme.CNSActiveNSListCSI:
		if req.Cmd.CNS() == nvme.CNSActiveNSListCSI && req.Cmd.CSI() != 0 {
			q.complete(req, nvme.StatusInvalidField, true)
			return
		}
		if c.discovery || nsid >= nvme.NSIDAll-1 {
			q.complete(req, nvme.StatusInvalidNamespaceOrFormat, true)
			return
		}
		c.subsys.activeNSList((*nvme.NSList)(buf), nsid)
	case nvme.CNSNSDescriptors:
		ns := c.subsys.namespace(nsid)
		if c.discovery || ns == nil {
			q.complete(req, nvme.StatusInvalidNamespaceOrFormat, true)
			return
		}
		ns.descriptors((*nvme.NSDescList)(buf))
	default:
		q.complete(req, nvme.StatusInvalidField, true)
		return
	}
	req.copyOut(buf[:])
	q.complete(req, nvme.StatusSuccess, false)
}

// identifyController fills the Identify Controller data structure (NVMe Base 2.0, "Identify
// Controller Data Structure"; NVMe-oF 1.1 bytes 1792..2047). Linux checks that SGLs are
// supported, ICDOFF is 0 and IOCCSZ leaves room for in-capsule data.
func (c *Controller) identifyController(d *nvme.IdentifyController) {
	s, opts := c.subsys, c.opts
	d.SetVID(0)
	d.SetSSVID(0)
	_ = d.SetSN(s.serial) // validated at subsystem creation (N4)
	_ = d.SetMN(s.model)
	_ = d.SetFR(c.target.firmware)
	d.SetRAB(6)
	d.SetCNTLID(c.cntlid)
	d.SetVER(controllerVersion)
	d.SetSQES(nvme.SQES64)
	d.SetCQES(nvme.CQES16)
	d.SetMAXCMD(opts.MaxQueueDepth)
	d.SetSGLS(nvme.SGLSSupported | nvme.SGLSAddressOffset)
	d.SetIOCCSZ((nvme.SQESize + opts.InCapsuleDataSize) / 16)
	d.SetIORCSZ(nvme.CQESize / 16)
	d.SetICDOFF(0)
	d.SetFCATT(0) // dynamic controller model
	d.SetMSDBD(1)
	d.SetOFCS(nvme.OFCSDisconnect)
	d.SetKAS(uint16(opts.KeepAliveGranularity / kasUnit))
	d.SetCTRATT(nvme.CTRATTHostID128)
	d.SetLPA(nvme.LPAExtendedData | nvme.LPACommandsEffects)
	d.SetELPE(errorLogEntries - 1)
	d.SetAERL(aerOutstandingMax - 1)
	d.SetMDTS(opts.MDTS())
	_ = d.SetSubNQN(s.nqn)
	if c.discovery {
		d.SetCNTRLTYPE(nvme.ControllerTypeDiscovery)
		d.SetOAES(nvme.OAESDiscoveryLog)
		return
	}
	d.SetCNTRLTYPE(nvme.ControllerTypeIO)
	// Several controllers (hosts, or one host's paths) share the namespaces: Linux then
	// builds one multipath node per namespace.
	d.SetCMIC(nvme.CMICMultiPort | nvme.CMICMultiController)
	d.SetOAES(nvme.OAESNSAttribute)
	d.SetACL(abortOutstandingMax - 1)
	d.SetFRMW(1<<1 | 1) // one slot, read only
	d.SetNN(s.maxNS)
	d.SetMNAN(s.maxNS)
	d.SetONCS(nvme.ONCSCompare | nvme.ONCSDatasetManagement | nvme.ONCSWriteZeroes)
	d.SetVWC(nvme.VWCPresent | nvme.VWCFlushAllNotSupp)
}

// logPageMask is the bit of c.masked for the event whose log page is lid.
func logPageMask(lid nvme.LogPageID) uint32 {
	switch lid {
	case nvme.LogChangedNSList:
		return 1 << 0
	case nvme.LogDiscovery:
		return 1 << 1
	case nvme.LogErrorInfo:
		return 1 << 2
	}
	return 0
}

// getLogPage answers Get Log Page (NVMe Base 2.0, "Get Log Page command") from offset LPO for
// NUMD dwords: error information, SMART / health, firmware slot, changed namespace list,
// commands supported and effects, and the discovery log on a discovery controller.
func (c *Controller) getLogPage(req *Request) {
	q := c.admin
	size, off := req.Cmd.LogDwords()*4, req.Cmd.LogOffset()
	if req.Xfer != nvme.DataFromCtrl || size > uint64(req.Length) || off%4 != 0 {
		q.complete(req, nvme.StatusInvalidField, true)
		return
	}
	lid := req.Cmd.LID()
	var page []byte
	switch {
	case lid == nvme.LogDiscovery && c.discovery:
		page = c.target.discoveryLog(c.hostNQN)
	case c.discovery && lid != nvme.LogErrorInfo:
		q.complete(req, nvme.StatusInvalidLogPage, true)
		return
	case lid == nvme.LogErrorInfo:
		page = c.errorLog()
	case lid == nvme.LogSMARTHealth:
		page = c.smartLog()
	case lid == nvme.LogFirmwareSlot:
		var fw nvme.FirmwareSlotLog
		fw.SetAFI(1, 0)
		_ = fw.SetRevision(1, c.target.firmware)
		page = fw[:]
	case lid == nvme.LogChangedNSList:
		page = c.changedNSLog()
	case lid == nvme.LogCommandsEffects:
		page = commandsEffects[:]
	default:
		q.complete(req, nvme.StatusInvalidLogPage, true)
		return
	}
	if off > uint64(len(page)) {
		q.complete(req, nvme.StatusInvalidField, true) // NVMe Base 2.0: LPO beyond the page
		return
	}
	req.SetLength(uint32(size))
	req.copyOut(page[off:])
	if !req.Cmd.RAE() {
		c.masked &^= logPageMask(lid) // the host read it: its event may be reported again
		if lid == nvme.LogChangedNSList {
			c.changedLen, c.changedOver = 0, false
		}
	}
	q.complete(req, nvme.StatusSuccess, false)
}

// errorLog is the Error Information log, newest entry first.
func (c *Controller) errorLog() []byte {
	page := make([]byte, errorLogEntries*nvme.ErrorInfoSize) // admin path: a page per read
	n := min(c.errCount, errorLogEntries)
	for i := uint64(0); i < n; i++ {
		e := &c.errLog[(c.errCount-1-i)%errorLogEntries]
		copy(page[i*nvme.ErrorInfoSize:], e[:])
	}
	return page
}

// smartLog is the controller's SMART / Health log: the counters the target keeps (data units
// and commands), power-on time, and the error count. Temperatures and wear do not apply to a
// target and read as zero, as Linux's nvmet reports them.
func (c *Controller) smartLog() []byte {
	var l nvme.SMARTLog
	st := c.stats()
	units := func(bytes uint64) nvme.Uint128 { // thousands of 512-byte units, rounded up
		return nvme.Uint128{Lo: (bytes/512 + 999) / 1000}
	}
	l.SetAvailableSpare(100)
	l.SetDataUnitsRead(units(st.BytesRead))
	l.SetDataUnitsWritten(units(st.BytesWritten))
	l.SetHostReadCommands(nvme.Uint128{Lo: st.ReadOps})
	l.SetHostWriteCommands(nvme.Uint128{Lo: st.WriteOps})
	l.SetPowerCycles(nvme.Uint128{Lo: 1})
	l.SetPowerOnHours(nvme.Uint128{Lo: uint64(time.Since(c.created) / time.Hour)})
	l.SetErrorLogEntries(nvme.Uint128{Lo: c.errCount})
	return l[:]
}

// changedNSLog is the Changed Namespace List log (NVMe Base 2.0, "Changed Namespace List").
func (c *Controller) changedNSLog() []byte {
	var l nvme.NSList
	if c.changedOver {
		l.SetOverflow()
	} else {
		_ = l.Set(c.changedNS[:c.changedLen]) // kept increasing and below NSIDAll by nsChanged
	}
	return l[:]
}

// commandsEffects is the Commands Supported and Effects log: what this target runs.
var commandsEffects = func() (l nvme.CommandsEffectsLog) {
	for _, op := range []nvme.AdminOpcode{nvme.AdminGetLogPage, nvme.AdminIdentify, nvme.AdminAbort,
		nvme.AdminSetFeatures, nvme.AdminGetFeatures, nvme.AdminAsyncEventReq, nvme.AdminKeepAlive} {
		l.SetAdmin(op, nvme.EffectCSUPP)
	}
	for _, op := range []nvme.IOOpcode{nvme.IORead, nvme.IOFlush, nvme.IOCompare} {
		l.SetIO(op, nvme.EffectCSUPP)
	}
	for _, op := range []nvme.IOOpcode{nvme.IOWrite, nvme.IOWriteZeroes, nvme.IODatasetManagement} {
		l.SetIO(op, nvme.EffectCSUPP|nvme.EffectLBCC)
	}
	return l
}()

// Feature values that are not kept per controller.
const (
	// aecSupported are the events a controller may be asked to report: namespace attribute
	// notices on I/O controllers, discovery log changes on discovery ones.
	aecSupportedIO        = nvme.OAESNSAttribute
	aecSupportedDiscovery = nvme.OAESDiscoveryLog
	// Get Features SEL 3 answer bits (NVMe Base 2.0, "Get Features", "Select"): changeable.
	featureChangeable = 1 << 2
)

// getFeatures answers Get Features (NVMe Base 2.0, "Get Features command") for the features a
// fabrics controller has. Nothing is saveable, so SEL saved returns the default.
func (c *Controller) getFeatures(req *Request) {
	q := c.admin
	fid, sel := req.Cmd.FID(), req.Cmd.SEL()
	if sel > nvme.FeatureSelectSupported {
		q.complete(req, nvme.StatusInvalidField, true)
		return
	}
	current := sel == nvme.FeatureSelectCurrent
	var v uint32
	changeable := true
	switch fid {
	case nvme.FeatureArbitration:
		if current {
			v = c.arbitration
		}
	case nvme.FeatureVolatileWriteCache:
		if current && c.vwc || !current {
			v = 1 // enabled by default: data is acknowledged before the back end flushes
		}
	case nvme.FeatureNumberOfQueues:
		n := uint32(c.opts.MaxIOQpairsPerCtrlr)
		if current && c.queuesAlloc > 0 {
			n = uint32(c.queuesAlloc)
		}
		v = nvme.NumberOfQueues(n, n)
	case nvme.FeatureAsyncEventConfig:
		if current {
			v = c.aecfg
		}
	case nvme.FeatureKeepAliveTimer:
		if current {
			v = uint32(c.kato / time.Millisecond)
		}
	case nvme.FeaturePowerManagement, nvme.FeatureErrorRecovery, nvme.FeatureWriteAtomicityNormal:
		changeable = false // all zero: power state 0, no error recovery time, no atomic normal
	case nvme.FeatureTemperatureThreshold:
		// Mandatory (hosts read it at start: spdk_nvme_identify, nvme-cli). The selectors come
		// in CDW11 and go back with the threshold.
		_, tmpsel, thsel := nvme.TemperatureThreshold(req.Cmd.CDW11())
		if tmpsel > nvme.TMPSELSensorMax || thsel > nvme.THSELUnder {
			q.complete(req, nvme.StatusInvalidField, true)
			return
		}
		v = req.Cmd.CDW11() &^ 0xFFFF
		if current {
			v |= uint32(c.tempThreshold[tmpsel][thsel])
		}
	default:
		q.complete(req, nvme.StatusInvalidField, true)
		return
	}
	if c.discovery && fid != nvme.FeatureAsyncEventConfig && fid != nvme.FeatureKeepAliveTimer {
		q.complete(req, nvme.StatusInvalidField, true)
		return
	}
	if sel == nvme.FeatureSelectSupported {
		v = 0
		if changeable {
			v = featureChangeable
		}
	}
	req.Rsp.SetDW0(v)
	q.complete(req, nvme.StatusSuccess, false)
}

// setFeatures answers Set Features for the features that may change.
func (c *Controller) setFeatures(req *Request) {
	q := c.admin
	fid, v := req.Cmd.FID(), req.Cmd.CDW11()
	if req.Cmd.SV() {
		q.complete(req, nvme.StatusFeatureNotSaveable, true)
		return
	}
	if c.discovery && fid != nvme.FeatureAsyncEventConfig && fid != nvme.FeatureKeepAliveTimer {
		q.complete(req, nvme.StatusInvalidField, true)
		return
	}
	switch fid {
	case nvme.FeatureArbitration:
		c.arbitration = v
	case nvme.FeatureVolatileWriteCache:
		c.vwc = v&1 != 0
	case nvme.FeatureTemperatureThreshold:
		tmpth, tmpsel, thsel := nvme.TemperatureThreshold(v)
		switch {
		case thsel > nvme.THSELUnder || (tmpsel > nvme.TMPSELSensorMax && tmpsel != nvme.TMPSELAll):
			q.complete(req, nvme.StatusInvalidField, true)
			return
		case tmpsel == nvme.TMPSELAll:
			for i := range c.tempThreshold {
				c.tempThreshold[i][thsel] = tmpth
			}
		default:
			c.tempThreshold[tmpsel][thsel] = tmpth
		}
	case nvme.FeatureNumberOfQueues:
		sq, cq := nvme.QueueCounts(v)
		if sq == 0x10000 || cq == 0x10000 { // FFFFh is reserved
			q.complete(req, nvme.StatusInvalidField, true)
			return
		}
		if c.ioCount > 0 {
			// NVMe Base 2.0: only before I/O queues exist.
			q.complete(req, nvme.StatusCommandSequenceError, true)
			return
		}
		n := min(sq, cq, uint32(c.opts.MaxIOQpairsPerCtrlr))
		c.queuesAlloc = uint16(n)
		req.Rsp.SetDW0(nvme.NumberOfQueues(n, n))
	case nvme.FeatureAsyncEventConfig:
		supported := aecSupportedIO
		if c.discovery {
			supported = aecSupportedDiscovery
		}
		c.aecfg = v & supported
	case nvme.FeatureKeepAliveTimer:
		kato, ok := katoFor(c.opts, time.Duration(v)*time.Millisecond, c.discovery)
		if !ok {
			q.complete(req, nvme.StatusKeepAliveTimeoutInvalid, true)
			return
		}
		c.setKATO(kato)
	default:
		q.complete(req, nvme.StatusInvalidField, true)
		return
	}
	q.complete(req, nvme.StatusSuccess, false)
}

// setKATO changes the keep-alive timeout and restarts the timer.
func (c *Controller) setKATO(kato time.Duration) {
	if c.katoTimer != nil {
		c.owner.RemovePoller(c.katoTimer)
		c.katoTimer = nil
	}
	c.kato = kato
	c.start()
}

// asyncEventRequest holds an AER until an event is raised (NVMe Base 2.0, "Asynchronous
// Event Request command"), or answers it with one that is waiting.
func (c *Controller) asyncEventRequest(req *Request) {
	if c.aerCount == aerOutstandingMax {
		c.admin.complete(req, nvme.StatusAsyncEventRequestLimitExceeded, true)
		return
	}
	if c.eventCount > 0 {
		ev := c.events[0]
		copy(c.events[:], c.events[1:c.eventCount])
		c.eventCount--
		req.Rsp.SetDW0(ev)
		c.admin.complete(req, nvme.StatusSuccess, false)
		return
	}
	c.aers[c.aerCount] = req
	c.aerCount++
}

// raiseEvent reports an asynchronous event whose log page is lid, unless one about that page
// is already reported and not yet read (the page's mask), or the host did not enable it.
func (c *Controller) raiseEvent(enable uint32, t nvme.AsyncEventType, info uint8, lid nvme.LogPageID) {
	bit := logPageMask(lid)
	if c.destructing || c.aecfg&enable == 0 || c.masked&bit != 0 {
		return
	}
	c.masked |= bit
	ev := nvme.AsyncEvent(t, info, lid)
	if c.aerCount > 0 {
		req := c.aers[0]
		copy(c.aers[:], c.aers[1:c.aerCount])
		c.aerCount--
		c.aers[c.aerCount] = nil
		req.Rsp.SetDW0(ev)
		c.admin.complete(req, nvme.StatusSuccess, false)
		return
	}
	if c.eventCount < aerEventsMax { // each page's mask lets at most one event per page wait
		c.events[c.eventCount] = ev
		c.eventCount++
	}
}

// completeAERs ends every held AER with st (teardown, reset).
func (c *Controller) completeAERs(st nvme.Status) {
	for c.aerCount > 0 {
		c.aerCount--
		req := c.aers[c.aerCount]
		c.aers[c.aerCount] = nil
		c.admin.complete(req, st, false)
	}
}

// nsChanged records that namespace nsid was added or removed and raises the notice (NVMe
// Base 2.0, "Namespace Attribute Changed"). Owner only; the subsystem posts it here.
func (c *Controller) nsChanged(nsid uint32) {
	if c.discovery || c.destructing {
		return
	}
	if !c.changedOver {
		i := 0
		for i < c.changedLen && c.changedNS[i] < nsid {
			i++
		}
		switch {
		case i < c.changedLen && c.changedNS[i] == nsid:
		case c.changedLen == len(c.changedNS):
			c.changedOver = true
		default:
			copy(c.changedNS[i+1:c.changedLen+1], c.changedNS[i:c.changedLen])
			c.changedNS[i] = nsid
			c.changedLen++
		}
	}
	c.raiseEvent(nvme.OAESNSAttribute, nvme.AsyncEventNotice, nvme.AsyncNoticeNSAttributeChanged, nvme.LogChangedNSList)
}

// discoveryChanged raises the discovery log change notice on a discovery controller.
func (c *Controller) discoveryChanged() {
	if c.discovery {
		c.raiseEvent(nvme.OAESDiscoveryLog, nvme.AsyncEventNotice, nvme.AsyncNoticeDiscoveryChanged, nvme.LogDiscovery)
	}
}

// abort runs Abort (NVMe Base 2.0, "Abort command"): DW0 bit 0 clear means the command was
// aborted. Held AERs on the admin queue abort here; an I/O queue's command aborts only if it
// has not started, which its reactor decides.
func (c *Controller) abort(req *Request) {
	q := c.admin
	sqid, cid := req.Cmd.AbortSQID(), req.Cmd.AbortCID()
	req.Rsp.SetDW0(1) // not aborted, unless found below
	if c.aborts == abortOutstandingMax {
		q.complete(req, nvme.StatusAbortCommandLimitExceeded, true)
		return
	}
	if sqid == 0 {
		for i := 0; i < c.aerCount; i++ {
			if aer := c.aers[i]; aer.Cmd.CID() == cid {
				copy(c.aers[i:], c.aers[i+1:c.aerCount])
				c.aerCount--
				c.aers[c.aerCount] = nil
				q.complete(aer, nvme.StatusAbortRequested, false)
				req.Rsp.SetDW0(0)
				break
			}
		}
		q.complete(req, nvme.StatusSuccess, false)
		return
	}
	if int(sqid) >= len(c.ioQpairs) || c.ioQpairs[sqid] == nil {
		q.complete(req, nvme.StatusSuccess, false)
		return
	}
	target := c.ioQpairs[sqid]
	c.aborts++
	c.target.post(target.owner, func() {
		aborted := target.abortQueued(cid)
		c.target.post(c.owner, func() {
			c.aborts--
			if aborted {
				req.Rsp.SetDW0(0)
			}
			q.complete(req, nvme.StatusSuccess, false)
		})
	})
}

// stats sums the controller's qpairs, live and retired.
func (c *Controller) stats() IOStats { return c.subsys.controllerStats(c) }
