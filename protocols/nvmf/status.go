package nvmf

import (
	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/services/bdev"
	"golang.org/x/sys/unix"
)

// ioStatus translates how a bdev.IO ended into the NVMe status its command completes with and
// whether the host may retry it (DNR clear). It is the one place bdev.Status becomes an NVMe
// status (STYLE.md: one translator per front end; TestIOStatusEveryValue walks them all), the
// way SPDK's spdk_bdev_io_get_nvme_status does. t is the command's bdev type, which picks the
// media error for an errno (NVM Command Set 1.0, "Media and Data Integrity Errors").
func ioStatus(io *bdev.IO, t bdev.IOType) (st nvme.Status, dnr bool) {
	switch io.Status {
	case bdev.StatusSuccess:
		return nvme.StatusSuccess, false
	case bdev.StatusNVMe: // an NVMe back end's own answer, passed through unchanged
		return nvme.MakeStatus(io.NVMe.SCT, io.NVMe.SC), io.NVMe.DNR
	case bdev.StatusSCSI:
		return scsiStatus(io.SCSI, t), true
	case bdev.StatusErrno:
		return errnoStatus(io.Errno, t)
	case bdev.StatusAborted:
		// NVMe Base 2.0, "Command Abort Requested": retryable as is.
		return nvme.StatusAbortRequested, false
	case bdev.StatusMiscompare:
		return nvme.StatusCompareFailure, true
	case bdev.StatusOutOfRange:
		return nvme.StatusLBAOutOfRange, true
	case bdev.StatusUnsupported:
		return nvme.StatusInvalidOpcode, true
	case bdev.StatusInvalid:
		return nvme.StatusInvalidField, true
	case bdev.StatusRetry, bdev.StatusNoResources:
		// A stage restarting or a queue below full (B5 says the channel retries the latter
		// itself; if it ever leaks here it is still transient): the host retries after its
		// delay rather than failing the I/O.
		return nvme.StatusNamespaceNotReady, false
	case bdev.StatusFailed:
		return nvme.StatusInternalError, true
	}
	// StatusPending or a value past StatusCount: a completion without a final status is a
	// bug below us; the host gets a failed command, never a success.
	return nvme.StatusInternalError, true
}

// errnoStatus maps a back end's errno (a uring file or block device) to NVMe.
func errnoStatus(e unix.Errno, t bdev.IOType) (nvme.Status, bool) {
	switch e {
	case unix.EIO, unix.EBADMSG, unix.ENODATA:
		// The back end already retried what it could (bdev: errno is not Retryable).
		if t == bdev.IORead || t == bdev.IOCompare {
			return nvme.StatusUnrecoveredReadError, true
		}
		return nvme.StatusWriteFault, true
	case unix.ENOSPC, unix.EDQUOT:
		return nvme.StatusCapacityExceeded, true
	case unix.EINVAL:
		return nvme.StatusInvalidField, true
	case unix.EROFS, unix.EPERM, unix.EACCES:
		return nvme.StatusNamespaceWriteProtected, true
	case unix.EAGAIN, unix.ENOMEM, unix.EBUSY, unix.EINTR:
		return nvme.StatusNamespaceNotReady, false
	case unix.ECANCELED:
		return nvme.StatusAbortRequested, false
	}
	return nvme.StatusInternalError, true
}

// scsiStatus maps a SCSI stage's status and sense to NVMe (the NVM Express "SCSI Translation
// Reference" in reverse, for the sense keys a back end reports).
func scsiStatus(s bdev.SCSIStatus, t bdev.IOType) nvme.Status {
	const (
		senseNotReady       = 0x2
		senseMediumError    = 0x3
		senseIllegalRequest = 0x5
		senseDataProtect    = 0x7
		senseMiscompare     = 0xE
		ascLBAOutOfRange    = 0x21
	)
	switch s.SenseKey {
	case senseNotReady:
		return nvme.StatusNamespaceNotReady
	case senseMediumError:
		if t == bdev.IORead || t == bdev.IOCompare {
			return nvme.StatusUnrecoveredReadError
		}
		return nvme.StatusWriteFault
	case senseIllegalRequest:
		if s.ASC == ascLBAOutOfRange {
			return nvme.StatusLBAOutOfRange
		}
		return nvme.StatusInvalidField
	case senseDataProtect:
		return nvme.StatusNamespaceWriteProtected
	case senseMiscompare:
		return nvme.StatusCompareFailure
	}
	return nvme.StatusInternalError
}
