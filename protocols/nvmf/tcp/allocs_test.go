package tcp

import (
	"io"
	"testing"

	"github.com/sluice-storage/sluice/internal/invariants"
	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/protocols/nvmf/tcp/pdu"
)

// TestHotPathAllocs: a 4 KiB read, a 4 KiB write in capsule and a 16 KiB write by R2T, each a
// full round trip over the socket through the target and the malloc back end, allocate
// nothing anywhere in the process (STYLE.md: AllocsPerRun = 0 on hot paths). The host side
// writes pre-encoded PDUs and reads into fixed buffers, so it allocates nothing either.
func TestHotPathAllocs(t *testing.T) {
	if invariants.Enabled {
		t.Skip("invariant checks (gettid, short reads) are on: the count is for the release build")
	}
	for _, digests := range []bool{false, true} {
		tt := newTestTarget(t, targetConfig{reactors: 1})
		admin := adminSession(t, tt.addr, testNQN, digests, digests)
		h := ioSession(t, tt.addr, testNQN, admin.cntlid, 1, digests, digests, true)
		dg := 0
		if digests {
			dg = pdu.DigestSize
		}
		conn := h.conn
		encode := func(op nvme.IOOpcode, blocks uint32, inCapsule []byte, sgl uint32) []byte {
			var sqe nvme.SQE
			sqe.SetOpcode(uint8(op))
			sqe.SetNSID(1)
			sqe.SetCID(9)
			sqe.SetBlockCount(blocks)
			sqe.SetPSDT(nvme.PSDTSGL)
			if inCapsule != nil {
				sqe.SGL1().SetInCapsule(uint32(len(inCapsule)))
			} else {
				sqe.SGL1().SetTransport(sgl)
			}
			b := make([]byte, 256)
			n := h.send.EncodeCapsuleCmd(b, (*[pdu.SQESize]byte)(&sqe), uint32(len(inCapsule)))
			out := append(b[:n:n], inCapsule...)
			if digests && inCapsule != nil {
				out = append(out, make([]byte, 4)...)
				pdu.PutDigest(out[len(out)-4:], pdu.Digest(inCapsule))
			}
			return out
		}
		respSize := pdu.CapsuleRespSize + dg
		read := encode(nvme.IORead, 8, nil, 4096)
		readIn := make([]byte, pdu.DataHeaderSize+dg+4096+dg+respSize)
		write := encode(nvme.IOWrite, 8, make([]byte, 4096), 0)
		writeIn := make([]byte, respSize)
		big := encode(nvme.IOWrite, 32, nil, 16384)
		r2tIn := make([]byte, pdu.R2TSize+dg)
		h2c := make([]byte, 256)
		n := h.send.EncodeH2CData(h2c, pdu.DataFields{CCCID: 9, TTAG: 0, DataLen: 16384, Last: true})
		h2c = append(h2c[:n:n], make([]byte, 16384+dg)...)
		if digests {
			pdu.PutDigest(h2c[len(h2c)-4:], pdu.Digest(make([]byte, 16384)))
		}
		must := func(err error) {
			if err != nil {
				t.Fatal(err)
			}
		}
		roundTrips := func() {
			_, err := conn.Write(read)
			must(err)
			_, err = io.ReadFull(conn, readIn)
			must(err)
			_, err = conn.Write(write)
			must(err)
			_, err = io.ReadFull(conn, writeIn)
			must(err)
			_, err = conn.Write(big)
			must(err)
			_, err = io.ReadFull(conn, r2tIn)
			must(err)
			// The R2T's TTAG is the request's slot; answer it.
			ttag := pdu.R2THeaderOf(r2tIn).TTAG()
			h2c[10], h2c[11] = byte(ttag), byte(ttag>>8)
			if digests {
				pdu.SetHeaderDigest(h2c)
			}
			_, err = conn.Write(h2c)
			must(err)
			_, err = io.ReadFull(conn, writeIn)
			must(err)
		}
		roundTrips()
		for _, b := range [][]byte{readIn[len(readIn)-respSize:], writeIn} {
			if st := (*nvme.CQE)(pdu.CapsuleRespOf(b).CQE()).Status(); !st.Success() {
				t.Fatalf("digests %v: status %v", digests, st)
			}
		}
		if a := testing.AllocsPerRun(200, roundTrips); a != 0 {
			t.Errorf("digests %v: %.1f allocations per read+write+R2T write, want 0", digests, a)
		}
	}
}
