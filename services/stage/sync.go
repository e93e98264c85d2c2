package stage

import (
	"fmt"
	"time"

	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

// SyncTimeout bounds a control-plane IO (SyncIO): a metadata read or write
// that takes longer means the device is gone.
const SyncTimeout = 30 * time.Second

// syncWaiter hands a completed IO's status to the waiting goroutine; the
// channel is buffered, so the reactor never waits.
type syncWaiter chan bdev.Status

func (w syncWaiter) Complete(io *bdev.IO) {
	st := io.Status
	io.Free()
	w <- st
}

// SyncIO runs one IO on d's channel on reactor r and waits for it: for the
// control plane only (a stage reading or writing its metadata at creation
// or on a state change), never on a reactor. buf is off-heap memory the
// caller keeps until SyncIO returns.
func SyncIO(r *reactors.Reactor, d *bdev.Desc, typ bdev.IOType, off, blocks uint64, buf []byte) error {
	w := make(syncWaiter, 1)
	var err error
	if cerr := r.Call(func() {
		var ch *bdev.Channel
		if ch, err = d.Channel(r); err != nil {
			return
		}
		io := ch.AllocIO()
		if io == nil {
			err = fmt.Errorf("bdev %q: IO pool empty", d.Bdev().Name())
			return
		}
		io.Type, io.OffsetBlocks, io.Blocks, io.Completer = typ, off, blocks, w
		if typ.HasData() {
			io.SetBuf(buf)
		}
		ch.Submit(io)
	}); cerr != nil {
		return cerr
	}
	if err != nil {
		return err
	}
	select {
	case st := <-w:
		if st != bdev.StatusSuccess {
			return fmt.Errorf("bdev %q: %v of blocks %d+%d: %v", d.Bdev().Name(), typ, off, blocks, st)
		}
		return nil
	case <-time.After(SyncTimeout):
		return fmt.Errorf("bdev %q: %v of blocks %d+%d: no completion in %v", d.Bdev().Name(), typ, off, blocks, SyncTimeout)
	}
}
