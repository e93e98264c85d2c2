package scsi

import (
	"fmt"

	"github.com/sluice-storage/sluice/protocols/scsi/cdb"
	"github.com/sluice-storage/sluice/services/bdev"
)

// SenseSizeMax is the room for sense data in a Task: the descriptor format
// with an information and a sense-key specific descriptor is the longest we
// build (cdb.DescriptorSenseSizeMax, 28 bytes).
const SenseSizeMax = 32

// Fails to compile if the sense builders could write more than a Task holds.
const _ uint = SenseSizeMax - cdb.DescriptorSenseSizeMax
const _ uint = SenseSizeMax - cdb.FixedSenseSize

// Progress is what Device.Start and Task.Resume tell the transport.
type Progress uint8

const (
	// ProgressDone: Status, Sense and the data-in (CopyDataIn, DataChunk) are final.
	ProgressDone Progress = iota
	// ProgressDataOut: receive Task.DataOut bytes into the data buffer (DataSpan,
	// CopyDataOut), then
	// call Resume.
	ProgressDataOut
	// ProgressRunning: the command is at the bdev; Completer.TaskDone runs
	// later on this reactor (S1).
	ProgressRunning
	// ProgressBusy: the reactor's IOs or buffers are all in use. Nothing was
	// changed: call Start again when one of your tasks completes.
	ProgressBusy
)

var progressNames = [...]string{"done", "data-out", "running", "busy"}

func (p Progress) String() string {
	if int(p) < len(progressNames) {
		return progressNames[p]
	}
	return fmt.Sprintf("Progress(%d)", uint8(p))
}

// Completer hears that a task that was ProgressRunning has completed.
type Completer interface {
	TaskDone(t *Task)
}

// taskState is where a task is; every transition is checked (S1).
type taskState uint8

const (
	taskFree     taskState = iota // released, or never started
	taskDataOut                   // waiting for the transport's data-out
	taskRunning                   // at the bdev
	taskComplete                  // status final; waiting for Release
)

var taskStateNames = [...]string{"free", "data-out", "running", "complete"}

func (s taskState) String() string {
	if int(s) < len(taskStateNames) {
		return taskStateNames[s]
	}
	return fmt.Sprintf("taskState(%d)", uint8(s))
}

// Task is one SCSI command. The transport owns the Task object (pool it per
// connection); between Start and Release the device uses its fields. Owner:
// the device's reactor.
type Task struct {
	// Set by the transport before Start.
	Nexus *Nexus
	// LUN is the 8-byte SAM-5 LUN field as received.
	LUN uint64
	// CDB is the command descriptor block; iSCSI passes its 16 bytes.
	CDB []byte
	// TransferLength is the transport's expected data transfer length in
	// bytes (iSCSI's EDTL).
	TransferLength uint32
	// Completer hears about ProgressRunning tasks.
	Completer Completer
	// Tag is the transport's task tag, for logs.
	Tag uint64

	// Set by the device.
	Cmd cdb.Command
	// DataSize is what the CDB asks to move, in bytes: the base of the
	// transport's residual for data-out commands.
	DataSize uint32
	// DataOut is how many bytes of data-out to land (ProgressDataOut):
	// DataSize clamped to TransferLength.
	DataOut uint32
	// DataIn is how many bytes of data-in the data buffer holds when done.
	DataIn uint32
	// Status is the SAM status; Sense[:SenseLen] its sense data (S4).
	Status   cdb.Status
	SenseLen int
	Sense    [SenseSizeMax]byte

	// Device-owned.
	state    taskState
	dev      *Device
	lun      *LUN
	io       *bdev.IO
	lock     *bdev.RangeLock
	data     segs      // the data buffer: off-heap, from the reactor's bdev pools (S3)
	scratch  segs      // a second one: verify reads, ORWRITE, WRITE SAME
	cmpIov   [1][]byte // COMPARE AND WRITE's compare half, as IO.CompareIovecs
	op       op        // the media operation in progress
	step     uint8     // its step
	index    uint32    // UNMAP descriptor or WRITE SAME chunk in progress
	lba      uint64    // media range of the task
	blocks   uint64
	prev     *Task // the LUN's list of tasks at the bdev
	next     *Task
	listed   bool
	resetGen uint32 // the LUN's reset generation at Start
}

// DataSpan is [off, off+n) of the task's data buffer when it lies in one
// segment, else nil: where a transport lands a data-out PDU directly (or
// copies it with CopyDataOut).
func (t *Task) DataSpan(off, n uint32) []byte { return t.data.span(off, n) }

// Holds reports whether t was started on l and not released yet: until
// then it may still send IO to l's channel. Owner only.
func (t *Task) Holds(l *LUN) bool { return l != nil && t.lun == l }

// DataChunk is the longest contiguous piece of the data buffer from off, of
// at most max bytes: what a transport sends one data-in PDU from.
func (t *Task) DataChunk(off, max uint32) []byte { return t.data.chunk(off, max) }

// CopyDataOut copies received data-out p to offset off, dropping what lies
// beyond DataOut.
func (t *Task) CopyDataOut(off uint32, p []byte) {
	if off < t.DataOut {
		t.data.copyIn(off, p[:min(uint32(len(p)), t.DataOut-off)])
	}
}

// CopyDataIn copies the data-in from offset off into p; it returns the count.
func (t *Task) CopyDataIn(off uint32, p []byte) int {
	if off >= t.DataIn {
		return 0
	}
	return t.data.copyOut(off, p[:min(uint32(len(p)), t.DataIn-off)])
}

// checkCondition ends t with CHECK CONDITION and the sense s, in the format
// the nexus asked for (D_SENSE of the Control mode page).
func (t *Task) checkCondition(s cdb.Sense) {
	t.Status = cdb.StatusCheckCondition
	desc := false
	if t.lun != nil {
		desc = t.lun.mode.dSense
	}
	t.SenseLen = s.Put(t.Sense[:], desc)
	t.DataIn = 0
}

// fail ends t with the sense of a cdb.Error.
func (t *Task) fail(err error) {
	switch e := err.(type) {
	case *cdb.Error:
		t.checkCondition(e.Sense())
		return
	case *senseErr:
		t.checkCondition(e.s)
		return
	}
	t.checkCondition(cdb.Sense{Key: cdb.KeyHardwareError, ASC: cdb.ASCInternalTargetFailure})
}

// senseOf is the sense of key and asc without more detail.
func senseOf(key cdb.SenseKey, asc cdb.ASC) cdb.Sense { return cdb.Sense{Key: key, ASC: asc} }

// good ends t with GOOD status and n bytes of data-in.
func (t *Task) good(n int) {
	t.Status = cdb.StatusGood
	t.SenseLen = 0
	t.DataIn = uint32(n)
}

// conflict ends t with RESERVATION CONFLICT, which carries no sense.
func (t *Task) conflict() {
	t.Status = cdb.StatusReservationConflict
	t.SenseLen = 0
	t.DataIn = 0
}

// Release returns the task's buffers and IO to the reactor's pools once the
// transport has sent its response (S3). Releasing a task that is not
// complete panics: its IO may still be at the bdev.
func (t *Task) Release() {
	switch t.state {
	case taskFree:
		return
	case taskRunning:
		panic(fmt.Sprintf("scsi: release of running task %#x (opcode %#02x)", t.Tag, uint8(t.Cmd.Opcode)))
	}
	t.freeResources()
	t.state = taskFree
	t.lun, t.dev = nil, nil
}

func (t *Task) freeResources() {
	if t.dev == nil {
		return
	}
	l := t.dev.local
	t.data.free(l)
	t.scratch.free(l)
	if t.io != nil {
		t.io.Free()
		t.io = nil
	}
}

// Running reports whether the task is at the bdev (a transport that aborts
// it waits for its TaskDone).
func (t *Task) Running() bool { return t.state == taskRunning }

// DataOutPending reports whether the task waits for data-out.
func (t *Task) DataOutPending() bool { return t.state == taskDataOut }
