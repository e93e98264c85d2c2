package iscsi

import (
	"errors"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/protocols/iscsi/pdu"
	"github.com/sluice-storage/sluice/protocols/scsi"
	"github.com/sluice-storage/sluice/services/bdev"
)

// TestLUNHotRemove: deleting the bdev a LUN serves is SPDK's hot remove. A
// write to that LUN waiting for its Data-Out holds the deletion until it
// completes; then the LUN is gone: commands to it fail, the node's
// configuration drops it, the other LUN works after reporting REPORTED LUNS
// DATA HAS CHANGED, and REPORT LUNS lists it alone.
func TestLUNHotRemove(t *testing.T) {
	tt := newTarget(t, targetOptions{luns: []scsi.Config{{}, {}}, blocks: 2048})
	i := dial(t, tt, iniOptions{isid: 1})
	i.lun = scsi.EncodeLUN(1)
	i.clearUA()

	// A write to LUN 1 takes its data by R2T: the task holds the LUN meanwhile.
	data := make([]byte, 512)
	itt := i.command(write10(7, 1), 512, false, true, nil, true)
	h, _ := i.recvOp(pdu.OpR2T)
	deleted := make(chan error, 1)
	go func() { deleted <- tt.reg.Delete("Malloc1") }()
	select {
	case err := <-deleted:
		t.Fatalf("Delete returned (%v) while a write to the LUN waited for its data", err)
	case <-time.After(200 * time.Millisecond):
	}
	i.dataOut(itt, h.R2T().TTT(), 0, 0, true, data)
	if st, _, _ := i.response(itt); st != 0 {
		t.Fatalf("the write in flight at the removal ended with status %#x, want GOOD", st)
	}
	if err := <-deleted; err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, ok := tt.reg.Lookup("Malloc1"); ok {
		t.Fatal("Malloc1 still listed")
	}
	if luns := tt.srv.Nodes()[0].LUNs; len(luns) != 1 || luns[0].Bdev != "Malloc0" {
		t.Fatalf("node LUNs after the removal: %+v", luns)
	}

	if st, _, _ := i.response(i.command(read10(0, 1), 512, true, false, nil, true)); st != 2 {
		t.Errorf("read of the removed LUN: status %#x, want CHECK CONDITION", st)
	}
	i.lun = scsi.EncodeLUN(0)
	if st, _, _ := i.response(i.command([]byte{0, 0, 0, 0, 0, 0}, 0, false, false, nil, true)); st != 2 {
		t.Errorf("LUN 0 after the removal: status %#x, want CHECK CONDITION (the unit attention)", st)
	}
	i.clearUA()
	st, list, _ := i.response(i.command([]byte{0xa0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0}, 256, true, false, nil, true))
	if st != 0 || len(list) != 16 || list[3] != 8 {
		t.Errorf("REPORT LUNS after the removal: status %#x, %x; want one LUN", st, list)
	}

	// A LUN whose bdev a stage-like opener holds without asking for notices is
	// not removed: the deletion is refused and nothing changes.
	d, err := tt.reg.Open("Malloc0", false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := tt.reg.Delete("Malloc0"); !errors.Is(err, bdev.ErrInUse) {
		t.Errorf("Delete of a bdev another opener holds: %v, want ErrInUse", err)
	}
	if luns := tt.srv.Nodes()[0].LUNs; len(luns) != 1 {
		t.Errorf("a refused Delete changed the node: %+v", luns)
	}
}
