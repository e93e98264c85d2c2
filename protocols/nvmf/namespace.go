package nvmf

import (
	"math/bits"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

// Namespace is a bdev attached to a subsystem under an NSID. Its identity is fixed at
// attachment; the per-reactor slots belong to their reactors (N1 in doc.go), so the I/O path
// takes no lock: a command looks the namespace up in the subsystem's published table (an
// atomic pointer), counts itself in its reactor's slot, and submits on its reactor's channel.
type Namespace struct {
	nsid      uint32
	bdev      *bdev.Bdev
	desc      *bdev.Desc
	uuid      uuid.UUID
	nguid     [16]byte
	eui64     [8]byte
	blockSize uint32
	blockLog  uint8
	blocks    uint64
	types     bdev.IOTypeSet

	// removed is set (by the control plane) before the namespace leaves the table, so a
	// command that still holds it fails rather than submits after the drain (N2).
	removed atomic.Bool

	// slots[i] belongs to reactor i: its channel, opened on first use there, and the
	// commands of that reactor holding the namespace.
	slots []nsSlot
}

// nsSlot is one reactor's view of a namespace, on a cache line of its own so reactors do not
// share one.
type nsSlot struct {
	ch          *bdev.Channel
	outstanding int
	_           [48]byte
}

// NSID is the namespace ID.
func (ns *Namespace) NSID() uint32 { return ns.nsid }

// Bdev is the attached bdev.
func (ns *Namespace) Bdev() *bdev.Bdev { return ns.bdev }

// UUID is the namespace UUID hosts see.
func (ns *Namespace) UUID() uuid.UUID { return ns.uuid }

func newNamespace(nsid uint32, d *bdev.Desc, cfg *NamespaceConfig, reactorCount int) *Namespace {
	b := d.Bdev()
	ns := &Namespace{
		nsid: nsid, bdev: b, desc: d, uuid: cfg.UUID, nguid: cfg.NGUID, eui64: cfg.EUI64,
		blockSize: b.BlockSize(), blockLog: uint8(bits.TrailingZeros32(b.BlockSize())), blocks: b.Blocks(),
		types: b.IOTypes(), slots: make([]nsSlot, reactorCount),
	}
	if ns.uuid == uuid.Nil {
		ns.uuid = b.UUID()
	}
	return ns
}

// channel is the namespace's channel on r, opened on first use. Owner: r.
func (ns *Namespace) channel(r *reactors.Reactor) (*bdev.Channel, error) {
	s := &ns.slots[r.Index()]
	if s.ch == nil {
		ch, err := ns.desc.Channel(r)
		if err != nil {
			return nil, err
		}
		s.ch = ch
	}
	return s.ch, nil
}

// identify fills the Identify Namespace data structure (NVM Command Set 1.0, "Identify
// Namespace Data Structure") from the bdev: one LBA format, the bdev's block size.
func (ns *Namespace) identify(d *nvme.IdentifyNamespace) {
	d.SetNSZE(ns.blocks)
	d.SetNCAP(ns.blocks)
	d.SetNUSE(ns.blocks)
	var feat uint8
	if ns.types.Has(bdev.IOUnmap) {
		feat |= nvme.NSFEATThinProvisioning
	}
	d.SetNSFEAT(feat)
	d.SetNLBAF(0)
	d.SetFLBAS(0)
	d.SetLBAF(0, nvme.LBAFormat{LBADS: ns.blockLog})
	d.SetNMIC(nvme.NMICShared)
	if ns.types.Has(bdev.IOUnmap) && ns.bdev.Info().UnmapZeroes {
		d.SetDLFEAT(nvme.DLFEATReadZeroes)
	}
	if b := ns.bdev.Info().BoundaryBlocks; b != 0 && b <= 0xFFFF {
		d.SetNOIOB(uint16(b))
	}
	d.SetNGUID(ns.nguid)
	d.SetEUI64(ns.eui64)
}

// descriptors fills the Namespace Identification Descriptor list (NVMe Base 2.0,
// "Namespace Identification Descriptor"): EUI-64 and NGUID when set, the UUID, and the
// command set (NVM).
func (ns *Namespace) descriptors(l *nvme.NSDescList) {
	var descs [4]nvme.NSDescriptor
	n := 0
	if ns.eui64 != [8]byte{} {
		descs[n] = nvme.NSDescriptor{Type: nvme.NIDTEUI64, ID: ns.eui64[:]}
		n++
	}
	if ns.nguid != [16]byte{} {
		descs[n] = nvme.NSDescriptor{Type: nvme.NIDTNGUID, ID: ns.nguid[:]}
		n++
	}
	descs[n] = nvme.NSDescriptor{Type: nvme.NIDTUUID, ID: ns.uuid[:]}
	n++
	descs[n] = nvme.NSDescriptor{Type: nvme.NIDTCSI, ID: []byte{0}} // NVM command set
	n++
	_ = l.Set(descs[:n]...) // four known types fit in 4 KiB
}

// NamespaceInfo is one namespace in nvmf_get_subsystems (SPDK's shape).
type NamespaceInfo struct {
	NSID     uint32 `json:"nsid"`
	BdevName string `json:"bdev_name"`
	Name     string `json:"name"`
	UUID     string `json:"uuid"`
	NGUID    string `json:"nguid,omitempty"`
	EUI64    string `json:"eui64,omitempty"`
}
