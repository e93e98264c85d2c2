package bdevtest

import (
	"github.com/sluice-storage/sluice/services/bdev"
)

// Model is the reference back end: a plain byte slice on the Go heap,
// written the obvious way, against which faster back ends are compared. Its
// Info is the test's to set, so the same op stream also exercises the bdev
// layer's splitting. It is a bdev.Driver too.
type Model struct {
	Info bdev.Info
}

// Create implements bdev.Driver.
func (m Model) Create(spec bdev.Spec) (bdev.Backend, error) {
	info := m.Info
	info.IOTypes = bdev.IOTypesOf(bdev.IORead, bdev.IOWrite, bdev.IOFlush, bdev.IOUnmap, bdev.IOWriteZeroes, bdev.IOCompare)
	info.UnmapZeroes = true
	return &model{info: info, bs: uint64(spec.BlockSize), mem: make([]byte, spec.Blocks*uint64(spec.BlockSize))}, nil
}

// model's memory is shared by every reactor's channel, as a device's is;
// the test goroutine runs one IO at a time, so they never overlap.
type model struct {
	info bdev.Info
	bs   uint64
	mem  []byte
}

func (m *model) Info() bdev.Info                                     { return m.info }
func (m *model) NewChannel(*bdev.Local) (bdev.ChannelBackend, error) { return m, nil }
func (m *model) Close() error                                        { return nil }

func (m *model) Submit(io *bdev.IO) {
	r := m.mem[io.OffsetBlocks*m.bs : (io.OffsetBlocks+io.Blocks)*m.bs]
	at := 0
	for _, v := range io.Iovecs {
		seg := r[at : at+len(v)]
		switch io.Type {
		case bdev.IORead:
			copy(v, seg)
		case bdev.IOWrite:
			copy(seg, v)
		case bdev.IOCompare:
			for i := range v {
				if v[i] != seg[i] {
					io.CompleteMiscompare(uint64(at + i))
					return
				}
			}
		}
		at += len(v)
	}
	if io.Type == bdev.IOUnmap || io.Type == bdev.IOWriteZeroes {
		clear(r)
	}
	io.Complete(bdev.StatusSuccess)
}
