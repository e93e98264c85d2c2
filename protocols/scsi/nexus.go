package scsi

import (
	"fmt"
	"strings"

	"github.com/sluice-storage/sluice/protocols/scsi/cdb"
)

// NexusID names one I_T nexus (SAM-5 4.6): the initiator port and the target
// port. For iSCSI the initiator port is "<initiator name>,i,0x<ISID>" and the
// target port "<target name>,t,0x<portal group tag>".
type NexusID struct {
	InitiatorName string // the initiator device name (iSCSI name)
	InitiatorPort string // the initiator port name
	TargetPort    string // the target port name
	RelativePort  uint16 // the relative target port identifier, >= 1
	// TransportID is the SPC-4 TransportID of the initiator port, as PR
	// IN READ FULL STATUS reports it.
	TransportID []byte
}

// ua is a unit attention condition; lower values have higher priority
// (SPC-4 5.14: power on and reset conditions first).
type ua uint8

const (
	uaPowerOn ua = iota
	uaLUNReset
	uaNexusLoss
	uaReservationsPreempted
	uaReservationsReleased
	uaRegistrationsPreempted
	uaModeParametersChanged
	uaCapacityChanged
	uaCommandsCleared
	uaReportedLUNsChanged
	uaCount
)

// Fails to compile if the conditions outgrow a uaSet.
const _ uint = 16 - uint(uaCount)

var uaSense = [uaCount]cdb.ASC{
	uaPowerOn:                cdb.ASCPowerOnOrReset,
	uaLUNReset:               cdb.ASCDeviceResetOccurred,
	uaNexusLoss:              cdb.ASCITNexusLossOccurred,
	uaReservationsPreempted:  cdb.ASCReservationsPreempted,
	uaReservationsReleased:   cdb.ASCReservationsReleased,
	uaRegistrationsPreempted: cdb.ASCRegistrationsPreempted,
	uaModeParametersChanged:  cdb.ASCModeParametersChanged,
	uaCapacityChanged:        cdb.ASCCapacityDataChanged,
	uaCommandsCleared:        cdb.ASCCommandsClearedByAnother,
	uaReportedLUNsChanged:    cdb.ASCReportedLUNsDataChanged,
}

// uaSet holds the pending unit attentions of one nexus on one LUN.
type uaSet uint16

func (s *uaSet) add(u ua) { *s |= 1 << u }

// take removes and returns the highest-priority condition (S6).
func (s *uaSet) take() (ua, bool) {
	for u := ua(0); u < uaCount; u++ {
		if *s&(1<<u) != 0 {
			*s &^= 1 << u
			return u, true
		}
	}
	return 0, false
}

// Nexus is one I_T nexus as the device knows it: its identity and its
// per-LUN state. The device keeps it while registrations name it, so a
// nexus that logs in again finds its registrations. Owner: the device's
// reactor.
type Nexus struct {
	id       NexusID
	index    int     // in Device.nexuses
	attached int     // transport sessions using it
	ua       []uaSet // per LUN index
	// senseDesc is REQUEST SENSE's answer when no UA is pending: the sense
	// of the last CHECK CONDITION is not kept (autosense delivered it).
}

// ID is the nexus's identity.
func (n *Nexus) ID() NexusID { return n.id }

// String names the nexus for logs.
func (n *Nexus) String() string { return n.id.InitiatorPort + " -> " + n.id.TargetPort }

// ISCSITransportID builds the SPC-4 iSCSI TransportID of an initiator port
// (FORMAT CODE 01b: "name,i,0x<ISID>", NUL-terminated and padded to a
// multiple of 4 bytes, at least 24 in all).
func ISCSITransportID(initiatorName string, isid [6]byte) []byte {
	s := fmt.Sprintf("%s,i,0x%02x%02x%02x%02x%02x%02x", strings.ToLower(initiatorName),
		isid[0], isid[1], isid[2], isid[3], isid[4], isid[5])
	n := len(s) + 1
	n += -n & 3
	if n < 20 {
		n = 20
	}
	b := make([]byte, 4+n)
	b[0] = 0x40 | cdb.ProtocolISCSI
	b[2], b[3] = byte(n>>8), byte(n)
	copy(b[4:], s)
	return b
}
