package nvme

import "fmt"

// SGLDescriptorSize is the size of one SGL descriptor (NVMe Base 2.0, "SGL Descriptor Format";
// 1.4 §4.4).
const SGLDescriptorSize = 16

const (
	offSGLAddress   = 0  // bytes 7:0
	offSGLLength    = 8  // bytes 11:8 (unkeyed descriptors)
	offSGLKeyLength = 8  // bytes 10:8 (keyed data block)
	offSGLKey       = 11 // bytes 14:11 (keyed data block)
	offSGLID        = 15 // SGL Identifier: type in bits 7:4, subtype in bits 3:0
)

const _ = uint(SGLDescriptorSize-16) + uint(16-SGLDescriptorSize) + uint(SGLDescriptorSize-(offSGLID+1)) // N1

// SGLType is an SGL descriptor type (bits 7:4 of the identifier).
type SGLType uint8

const (
	SGLDataBlock          SGLType = 0x0
	SGLBitBucket          SGLType = 0x1
	SGLSegment            SGLType = 0x2
	SGLLastSegment        SGLType = 0x3
	SGLKeyedDataBlock     SGLType = 0x4
	SGLTransportDataBlock SGLType = 0x5
	SGLVendorSpecific     SGLType = 0xF
)

// SGLSubtype is an SGL descriptor subtype (bits 3:0 of the identifier).
type SGLSubtype uint8

const (
	SGLSubtypeAddress   SGLSubtype = 0x0
	SGLSubtypeOffset    SGLSubtype = 0x1 // address is an offset into in-capsule data
	SGLSubtypeTransport SGLSubtype = 0xA // transport specific (NVMe/TCP: data moved by R2T/C2HData)
)

// SGLDescriptor is one SGL descriptor, viewed in place over 16 bytes.
type SGLDescriptor [SGLDescriptorSize]byte

func (d *SGLDescriptor) Address() uint64     { return get64(d[:], offSGLAddress) }
func (d *SGLDescriptor) SetAddress(a uint64) { put64(d[:], offSGLAddress, a) }
func (d *SGLDescriptor) Length() uint32      { return get32(d[:], offSGLLength) }
func (d *SGLDescriptor) SetLength(n uint32)  { put32(d[:], offSGLLength, n) }
func (d *SGLDescriptor) Type() SGLType       { return SGLType(d[offSGLID] >> 4) }
func (d *SGLDescriptor) Subtype() SGLSubtype { return SGLSubtype(d[offSGLID] & 0xF) }
func (d *SGLDescriptor) KeyedLength() uint32 { return get24(d[:], offSGLKeyLength) }
func (d *SGLDescriptor) Key() uint32         { return get32(d[:], offSGLKey) }

// SetIdentifier sets the descriptor type and subtype.
func (d *SGLDescriptor) SetIdentifier(t SGLType, st SGLSubtype) {
	d[offSGLID] = uint8(t)<<4 | uint8(st)&0xF
}

// Reset zeroes d (N3).
func (d *SGLDescriptor) Reset() { *d = SGLDescriptor{} }

// SetInCapsule makes d describe n bytes of in-capsule data: a Data Block descriptor with the
// Offset subtype and offset 0, as NVMe/TCP requires (ICDOFF is 0 on TCP).
func (d *SGLDescriptor) SetInCapsule(n uint32) {
	d.Reset()
	d.SetLength(n)
	d.SetIdentifier(SGLDataBlock, SGLSubtypeOffset)
}

// SetTransport makes d describe n bytes the transport moves on its own (NVMe/TCP: R2T and
// H2CData for a write, C2HData for a read): a Transport SGL Data Block, transport-specific
// subtype, address 0. n = 0 is a command without data, as the Linux host sends it.
func (d *SGLDescriptor) SetTransport(n uint32) {
	d.Reset()
	d.SetLength(n)
	d.SetIdentifier(SGLTransportDataBlock, SGLSubtypeTransport)
}

// SGLUse says where the data of a command checked by CheckTCP lies.
type SGLUse uint8

const (
	SGLNoData    SGLUse = iota // length 0
	SGLInCapsule               // Length bytes follow the SQE in the command capsule
	SGLTransport               // Length bytes move by R2T/H2CData or C2HData
)

func (u SGLUse) String() string {
	switch u {
	case SGLNoData:
		return "no-data"
	case SGLInCapsule:
		return "in-capsule"
	case SGLTransport:
		return "transport"
	}
	return fmt.Sprintf("sgl-use-%d", uint8(u))
}

// CheckTCP checks SGL1 of a command received over NVMe/TCP, which carries exactly one
// descriptor (MSDBD 1) of one of two kinds (NVMe/TCP Transport 1.0, "Data Transfer" and the
// SGL rules of "Command Capsule"): a Data Block with the Offset subtype for in-capsule data,
// whose offset must be 0 because ICDOFF is 0 on TCP and whose length must fit icdSizeMax (the
// queue's in-capsule data size: IOCCSZ*16-64 on an I/O queue, at least 8192 on the admin
// queue), or a Transport SGL Data Block with the transport-specific subtype. Anything else is
// rejected with the status the command should complete with. It allocates nothing.
//
// The caller still compares an in-capsule Length with the data the PDU actually carried.
func (d *SGLDescriptor) CheckTCP(icdSizeMax uint32) (SGLUse, Status) {
	switch {
	case d.Type() == SGLDataBlock && d.Subtype() == SGLSubtypeOffset:
		if d.Address() != 0 {
			return SGLInCapsule, StatusSGLOffsetInvalid
		}
		if d.Length() > icdSizeMax {
			return SGLInCapsule, StatusDataSGLLengthInvalid
		}
		if d.Length() == 0 {
			return SGLNoData, StatusSuccess
		}
		return SGLInCapsule, StatusSuccess
	case d.Type() == SGLTransportDataBlock && d.Subtype() == SGLSubtypeTransport:
		if d.Length() == 0 {
			return SGLNoData, StatusSuccess
		}
		return SGLTransport, StatusSuccess
	}
	// Keyed (RDMA), address-subtype, bit bucket and segment descriptors (which point at more
	// descriptors in host memory) are types a TCP controller does not support.
	return SGLNoData, StatusSGLDescriptorTypeInvalid
}
