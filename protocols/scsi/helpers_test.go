package scsi

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/drivers/malloc"
	"github.com/sluice-storage/sluice/protocols/scsi/cdb"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

// waitTimeout bounds every wait on a reactor; reaching it fails the test.
const waitTimeout = 10 * time.Second

// rig is a reactor, a registry with a malloc bdev, and a device with that
// bdev as LUN 0. Everything runs on reactor 0; the test goroutine waits.
type rig struct {
	r    *reactors.Reactor
	reg  *bdev.Registry
	desc *bdev.Desc
	dev  *Device
	lun  *LUN
	done chan *Task
}

// newRig makes a rig with a malloc bdev of blocks blocks of bs bytes.
func newRig(t testing.TB, blocks uint64, bs uint32, cfg Config) *rig {
	t.Helper()
	set, err := reactors.Start([]int{0}, reactors.Options{NoPin: true})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := bdev.NewRegistry(set, bdev.Options{IOPoolSize: 256, BufSmallCount: 64, BufLargeCount: 16})
	if err != nil {
		set.Stop(waitTimeout)
		t.Fatal(err)
	}
	g := &rig{r: set.Get(0), reg: reg, done: make(chan *Task, 16)}
	t.Cleanup(func() {
		if g.desc != nil {
			g.desc.Close()
		}
		if err := reg.Close(); err != nil {
			t.Error(err)
		}
		if err := set.Stop(waitTimeout); err != nil {
			t.Error(err)
		}
	})
	if err := reg.RegisterDriver(malloc.Name, malloc.Driver{}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Create(bdev.Spec{Name: "Malloc0", Driver: malloc.Name, BlockSize: bs, Blocks: blocks}); err != nil {
		t.Fatal(err)
	}
	if g.desc, err = reg.Open("Malloc0", true); err != nil {
		t.Fatal(err)
	}
	g.call(t, func() {
		ch, err := g.desc.Channel(g.r)
		if err != nil {
			t.Error(err)
			return
		}
		g.dev = NewDevice("iqn.2024-01.io.sluice:test", reg.Local(g.r))
		if g.lun, err = NewLUN(ch, cfg); err != nil {
			t.Error(err)
			return
		}
		if err := g.dev.AddLUN(0, g.lun); err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	return g
}

// call runs fn on the rig's reactor.
func (g *rig) call(t testing.TB, fn func()) {
	t.Helper()
	if err := g.r.Call(fn); err != nil {
		t.Fatal(err)
	}
}

// nexus attaches an I_T nexus for initiator name with ISID byte isid.
func (g *rig) nexus(t testing.TB, name string, isid byte) *Nexus {
	var n *Nexus
	g.call(t, func() {
		id := [6]byte{0x80, 0, 0, 0, 0, isid}
		n = g.dev.Nexus(NexusID{InitiatorName: name,
			InitiatorPort: fmt.Sprintf("%s,i,0x%x", name, id),
			TargetPort:    g.dev.Name() + ",t,0x0001", RelativePort: 1,
			TransportID: ISCSITransportID(name, id)})
	})
	return n
}

// TaskDone implements Completer for the rig.
func (g *rig) TaskDone(t *Task) { g.done <- t }

// result is what a command ended with.
type result struct {
	status cdb.Status
	sense  []byte
	data   []byte
	// dataSize and dataOut are what the device asked of the transport.
	dataSize, dataOut uint32
}

// key, asc of a fixed or descriptor sense.
func (r result) key() cdb.SenseKey {
	if len(r.sense) >= 8 && r.sense[0]&0x7f >= 0x72 {
		return cdb.SenseKey(r.sense[1] & 0x0f)
	}
	if len(r.sense) < 14 {
		return 0
	}
	return cdb.SenseKey(r.sense[2] & 0x0f)
}

func (r result) asc() cdb.ASC {
	if len(r.sense) < 4 {
		return 0
	}
	if r.sense[0]&0x7f >= 0x72 {
		return cdb.ASC(r.sense[2])<<8 | cdb.ASC(r.sense[3])
	}
	if len(r.sense) < 14 {
		return 0
	}
	return cdb.ASC(r.sense[12])<<8 | cdb.ASC(r.sense[13])
}

func (r result) String() string {
	return fmt.Sprintf("status %#02x key %#x asc %s data %d bytes", uint8(r.status), uint8(r.key()), r.asc(), len(r.data))
}

// do runs one command for nexus n: cdbHex is the CDB in hex, edtl the
// expected transfer length, out the data-out the initiator sends.
func (g *rig) do(t testing.TB, n *Nexus, cdbHex string, edtl uint32, out []byte) result {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(cdbHex, " ", ""))
	if err != nil {
		t.Fatalf("cdb %q: %v", cdbHex, err)
	}
	return g.doCDB(t, n, 0, b, edtl, out)
}

// doCDB runs one command on LUN field lun.
func (g *rig) doCDB(t testing.TB, n *Nexus, lun uint64, b []byte, edtl uint32, out []byte) result {
	t.Helper()
	c := make([]byte, 16)
	copy(c, b)
	task := &Task{Nexus: n, LUN: lun, CDB: c, TransferLength: edtl, Completer: g}
	var p Progress
	var res result
	g.call(t, func() {
		for p = g.dev.Start(task); p == ProgressDataOut; {
			res.dataOut = task.DataOut
			task.CopyDataOut(0, out)
			p = task.Resume()
		}
	})
	switch p {
	case ProgressBusy:
		t.Fatalf("cdb %x: busy", b)
	case ProgressRunning:
		select {
		case <-g.done:
		case <-time.After(waitTimeout):
			t.Fatalf("cdb %x: no completion in %v", b, waitTimeout)
		}
	}
	g.call(t, func() {
		res.status = task.Status
		res.sense = append([]byte(nil), task.Sense[:task.SenseLen]...)
		res.data = make([]byte, task.DataIn)
		task.CopyDataIn(0, res.data)
		res.dataSize = task.DataSize
		task.Release()
	})
	return res
}

// clearUA takes the power-on unit attention off n.
func (g *rig) clearUA(t testing.TB, n *Nexus) {
	t.Helper()
	for range uaCount {
		if r := g.do(t, n, "00 00 00 00 00 00", 0, nil); r.status == cdb.StatusGood {
			return
		}
	}
	t.Fatal("unit attentions do not clear")
}

// expect fails unless r has status st and, for CHECK CONDITION, key and asc.
func expect(t testing.TB, what string, r result, st cdb.Status, key cdb.SenseKey, asc cdb.ASC) {
	t.Helper()
	if r.status != st || st == cdb.StatusCheckCondition && (r.key() != key || r.asc() != asc) {
		t.Errorf("%s: %v, want status %#02x key %#x asc %s", what, r, uint8(st), uint8(key), asc)
	}
}

func fill(n int, b byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = b
	}
	return p
}
