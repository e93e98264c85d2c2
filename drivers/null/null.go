package null

import (
	"github.com/sluice-storage/sluice/services/bdev"
)

// Name is the driver's name in a bdev.Registry and in conf's driver field.
const Name = "null"

// Driver makes null bdevs. The zero value zeroes read buffers (N2).
type Driver struct {
	// ReadsUntouched leaves read buffers as they are instead of zeroing
	// them: for measuring the stack; stale data reaches the reader.
	ReadsUntouched bool
}

// Create implements bdev.Driver. A null bdev needs only its geometry.
func (d Driver) Create(spec bdev.Spec) (bdev.Backend, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return &backend{zeroReads: !d.ReadsUntouched}, nil
}

type backend struct {
	zeroReads bool // set in Create, never changed
}

func (b *backend) Info() bdev.Info {
	return bdev.Info{
		IOTypes: bdev.IOTypesOf(bdev.IORead, bdev.IOWrite, bdev.IOFlush, bdev.IOUnmap,
			bdev.IOWriteZeroes, bdev.IOReset),
		UnmapZeroes: b.zeroReads,
	}
}

func (b *backend) NewChannel(*bdev.Local) (bdev.ChannelBackend, error) {
	return &channel{zeroReads: b.zeroReads}, nil
}

func (b *backend) Close() error { return nil }

// channel is the null back end on one reactor. Owner: that reactor.
type channel struct {
	zeroReads bool
}

// Submit completes io at once (N1).
func (c *channel) Submit(io *bdev.IO) {
	if io.Type == bdev.IORead && c.zeroReads { // N2
		for _, v := range io.Iovecs {
			clear(v)
		}
		clear(io.Metadata)
	}
	io.Complete(bdev.StatusSuccess)
}

func (c *channel) Close() error { return nil }
