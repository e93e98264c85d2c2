package bdev

import "fmt"

// Status is how an IO ended: one closed enum, with the NVMe, SCSI and errno
// detail in the IO's side fields (IO.NVMe, IO.SCSI, IO.Errno). Each front end
// translates it to its wire status in one function whose test walks every
// value up to StatusCount. The zero value is StatusPending.
type Status uint8

const (
	// StatusPending: the IO has not completed. Never a final status.
	StatusPending Status = iota
	// StatusSuccess: done as asked.
	StatusSuccess
	// StatusFailed: failed without more detail; do not retry as is.
	StatusFailed
	// StatusNVMe: failed with an NVMe status in IO.NVMe (an NVMe back end,
	// or a stage that speaks NVMe), passed through as is by NVMe front ends.
	StatusNVMe
	// StatusSCSI: failed with a SCSI status and sense in IO.SCSI.
	StatusSCSI
	// StatusErrno: failed with a system error in IO.Errno (a uring back end:
	// EIO is a media error, ENOSPC a full file system).
	StatusErrno
	// StatusAborted: cancelled before it ran to the end (a reset, a stage
	// torn down). Retryable.
	StatusAborted
	// StatusMiscompare: a compare found different data; IO.MiscompareOffset
	// is the byte offset of the first difference within the IO.
	StatusMiscompare
	// StatusNoResources: a queue or pool below was full. Backpressure: a
	// Channel resubmits the IO itself (B5); only Forward's submitter sees it.
	StatusNoResources
	// StatusOutOfRange: OffsetBlocks+Blocks beyond the bdev's end.
	StatusOutOfRange
	// StatusUnsupported: the bdev does not do this IOType.
	StatusUnsupported
	// StatusInvalid: a malformed request: data length that is not
	// Blocks*BlockSize, zero blocks, a buffer the back end cannot use, a
	// write on a read-only descriptor.
	StatusInvalid
	// StatusRetry: a transient failure (a stage restarting after a panic, a
	// path going away); the initiator may resubmit.
	StatusRetry

	// StatusCount is one past the last status, for tests that walk them all.
	StatusCount
)

var statusNames = [StatusCount]string{
	StatusPending:     "pending",
	StatusSuccess:     "success",
	StatusFailed:      "failed",
	StatusNVMe:        "nvme",
	StatusSCSI:        "scsi",
	StatusErrno:       "errno",
	StatusAborted:     "aborted",
	StatusMiscompare:  "miscompare",
	StatusNoResources: "no-resources",
	StatusOutOfRange:  "out-of-range",
	StatusUnsupported: "unsupported",
	StatusInvalid:     "invalid",
	StatusRetry:       "retry",
}

func (s Status) String() string {
	if s < StatusCount {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Valid reports whether s is one of the declared statuses.
func (s Status) Valid() bool { return s < StatusCount }

// Retryable reports whether the same IO might succeed if resubmitted
// unchanged: a front end sets NVMe's DNR or SCSI's retry hints from it.
func (s Status) Retryable() bool {
	switch s {
	case StatusAborted, StatusNoResources, StatusRetry:
		return true
	}
	return false
}

// NVMeStatus is the detail of StatusNVMe: NVMe Base Specification 2.0,
// 4.6.1.2 (Status Field): status code type, status code, do-not-retry.
type NVMeStatus struct {
	SCT uint8 // status code type: 0 generic, 1 command specific, 2 media, 3 path
	SC  uint8 // status code within SCT
	DNR bool  // do not retry
}

func (s NVMeStatus) String() string {
	return fmt.Sprintf("sct=%#x sc=%#02x dnr=%t", s.SCT, s.SC, s.DNR)
}

// SCSIStatus is the detail of StatusSCSI: SAM-5 status and SPC-4 fixed
// sense data fields.
type SCSIStatus struct {
	Status   uint8 // SAM status: 0x02 CHECK CONDITION, 0x08 BUSY, ...
	SenseKey uint8 // SPC-4 4.5.6
	ASC      uint8 // additional sense code
	ASCQ     uint8 // additional sense code qualifier
}

func (s SCSIStatus) String() string {
	return fmt.Sprintf("status=%#02x key=%#x asc=%#02x ascq=%#02x", s.Status, s.SenseKey, s.ASC, s.ASCQ)
}
