package crypto

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/drivers/malloc"
	"github.com/sluice-storage/sluice/drivers/null"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/bdev/bdevtest"
	"github.com/sluice-storage/sluice/services/stage"
	"github.com/sluice-storage/sluice/services/stage/stagetest"
)

var seedFlag = flag.Uint64("seed", 0, "metamorphic seed; 0 picks one from the clock")

func seed() uint64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	return uint64(time.Now().UnixNano())
}

type vector struct {
	n             int
	key           []byte
	sector        uint64
	plain, cipher []byte
}

func vectors(t *testing.T) map[int]vector {
	t.Helper()
	f, err := os.Open("testdata/ieee1619.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[int]vector{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<16)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		fs := strings.Fields(line)
		n, _ := strconv.Atoi(fs[0])
		sec, _ := strconv.ParseUint(fs[2], 16, 64)
		dec := func(s string) []byte {
			b, err := hex.DecodeString(s)
			if err != nil {
				t.Fatalf("vector %d: %v", n, err)
			}
			return b
		}
		out[n] = vector{n, dec(fs[1]), sec, dec(fs[3]), dec(fs[4])}
	}
	return out
}

func keyOf(t *testing.T, name string, k []byte) *Key {
	t.Helper()
	raw := append([]byte(nil), k...)
	key, err := NewKey(name, raw[:len(raw)/2], raw[len(raw)/2:])
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestIEEE1619Vectors: the key's cipher gives the standard's ciphertexts
// (vectors 2, 3: 32-byte data units), and vectors 4, 5 (AES-128) and 10
// (AES-256), 512-byte data units, written through the stage at LBA = data
// unit number land on the base as the standard's ciphertext and read back
// as the plaintext (C3).
func TestIEEE1619Vectors(t *testing.T) {
	vs := vectors(t)
	for _, n := range []int{2, 3} {
		v := vs[n]
		got := make([]byte, len(v.plain))
		keyOf(t, "v", v.key).cipher.Encrypt(got, v.plain, v.sector)
		if !bytes.Equal(got, v.cipher) {
			t.Errorf("vector %d: %x, want %x", n, got, v.cipher)
		}
	}
	if _, err := NewKey("v1", make([]byte, 16), make([]byte, 16)); !errors.Is(err, ErrKey) {
		t.Errorf("vector 1's equal halves accepted: %v", err)
	}
	for _, group := range [][]int{{4, 5}, {10}} {
		s := stagetest.NewStack(t, 1, malloc.Driver{}, reactors.Options{})
		s.Disks(t, 512, 512, "M0")
		key := keyOf(t, "k", vs[group[0]].key)
		st, err := New(s.Reg, Config{Name: "C0", Base: "M0", Key: key})
		s.Add(t, st, err)
		h := s.Open(t, "C0")
		for _, n := range group {
			v := vs[n]
			copy(h.Buf(0), v.plain)
			if st, d := h.Do(t, 0, bdev.IOWrite, v.sector, 1); st != bdev.StatusSuccess {
				t.Fatalf("vector %d: write: %s", n, d)
			}
			if !bytes.Equal(h.Buf(0)[:512], v.plain) {
				t.Fatalf("vector %d: the write changed the caller's buffer (C1)", n)
			}
		}
		s.List.Remove("C0") // keep the registry's: read the base raw beside the stage
		raw := rawRead(t, s, "M0")
		for _, n := range group {
			v := vs[n]
			if got := raw(v.sector, 1); !bytes.Equal(got, v.cipher) {
				t.Errorf("vector %d: base holds %x..., want %x...", n, got[:16], v.cipher[:16])
			}
			clear(h.Buf(0)[:512])
			if st, _ := h.Do(t, 0, bdev.IORead, v.sector, 1); st != bdev.StatusSuccess || !bytes.Equal(h.Buf(0)[:512], v.plain) {
				t.Errorf("vector %d: read back %v %x..., want the plaintext", n, st, h.Buf(0)[:16])
			}
		}
	}
}

// rawRead reads a claimed base beside its stage: the test's own read-only
// descriptor (a claim stops writers, not readers).
func rawRead(t *testing.T, s *stagetest.Stack, name string) func(off, n uint64) []byte {
	t.Helper()
	d, err := s.Reg.Open(name, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	r := s.Set.Get(0)
	bs := uint64(d.Bdev().BlockSize())
	region, err := bdev.MapRegion(256 << 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { region.Unmap() })
	return func(off, n uint64) []byte {
		t.Helper()
		buf := region.Bytes()[:n*bs]
		if err := stage.SyncIO(r, d, bdev.IORead, off, n, buf); err != nil {
			t.Fatal(err)
		}
		return append([]byte(nil), buf...)
	}
}

// TestMetamorphic: crypto over malloc reads back as malloc does, for 128-
// and 256-bit keys and both block sizes, with data cut into iovecs that
// split blocks (the straddling path). Unmap leaves undefined data on an
// encrypting bdev (it does not read as zeros), so the stream writes zeros
// instead.
func TestMetamorphic(t *testing.T) {
	sd := seed()
	for _, tc := range []struct {
		bs   uint32
		bits int
	}{{512, 128}, {4096, 256}, {4096, 128}} {
		t.Run(fmt.Sprintf("%d-%d", tc.bs, tc.bits), func(t *testing.T) {
			s := stagetest.NewStack(t, 2, malloc.Driver{}, reactors.Options{})
			s.Disks(t, tc.bs, 300, "M0", "REF")
			raw := make([]byte, tc.bits/4)
			for i := range raw {
				raw[i] = byte(i*7 + 1)
			}
			st, err := New(s.Reg, Config{Name: "C0", Base: "M0", Key: keyOf(t, "k", raw)})
			s.Add(t, st, err)
			// Blocks never written read as zeros on malloc and as decrypted
			// zeros through crypto: both start written with zeros.
			var ops []bdevtest.Op
			for off := uint64(0); off < 300; off += 32 {
				ops = append(ops, bdevtest.Op{Type: bdev.IOWriteZeroes, Offset: off, Blocks: min(32, 300-off)})
			}
			ops = append(ops, bdevtest.Replace(bdevtest.Ops(sd, 300, 2, 300, 24), bdev.IOUnmap, bdev.IOWriteZeroes)...)
			got := bdevtest.Run(t, s.Open(t, "C0"), ops)
			want := bdevtest.Run(t, s.Open(t, "REF"), ops)
			bdevtest.Compare(t, sd, "crypto", got, "malloc", want,
				fmt.Sprintf("go test ./services/crypto -run 'TestMetamorphic/%d-%d' -seed %d", tc.bs, tc.bits, sd))
		})
	}
}

// TestMetamorphicShaped: a shaped stage (a metadata bdev: C8) reads back
// as malloc does while its conversion runs under the stream:
// unmap and write-zeroes read as zeros, IO larger than a pooled buffer and
// across the watermark included; compare, which malloc does natively, is
// emulated above the stage.
func TestMetamorphicShaped(t *testing.T) {
	sd := seed()
	sizes := []uint32{512, 4096}
	if testing.Short() {
		sizes = sizes[1:] // the straddling path is TestMetamorphic's too
	}
	for _, bs := range sizes {
		t.Run(fmt.Sprint(bs), func(t *testing.T) {
			s := stagetest.NewStack(t, 2, malloc.Driver{}, reactors.Options{})
			blocks := uint64(16 * ConvertRegionSize / bs)
			s.Disks(t, bs, blocks, "M0")
			s.Disks(t, bs, ConvertRegionSize/uint64(bs)+2, "MD")
			raw := make([]byte, 64)
			for i := range raw {
				raw[i] = byte(i*5 + 3)
			}
			st, err := New(s.Reg, Config{Name: "C0", Base: "M0", Key: keyOf(t, "k", raw), Convert: true, Metadata: "MD",
				ConvertRate: 32 << 20}) // about as long as the stream's IO on the stage
			s.Add(t, st, err)
			s.Metamorphic(t, sd, 400, "C0", bdevtest.BufSize/uint64(bs),
				fmt.Sprintf("go test ./services/crypto -run 'TestMetamorphicShaped/%d' -seed %d", bs, sd))
			if err := st.WaitConversion(30 * time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestKeysNeverShow: a key prints as its name in every verb, lists without
// bytes, refuses equal halves and loose files, and is not destroyed while a
// stage uses it (C4).
func TestKeysNeverShow(t *testing.T) {
	raw, _ := hex.DecodeString("00112233445566778899aabbccddeeff0102030405060708090a0b0c0d0e0f10")
	k, err := NewKey("secret0", raw[:16], raw[16:])
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		if got := fmt.Sprintf(f, k); strings.Contains(got, "0011") || strings.Contains(got, "\x00\x11") || !strings.Contains(got, "secret0") {
			t.Errorf("%s prints %q", f, got)
		}
	}
	if !bytes.Equal(raw, make([]byte, 32)) {
		t.Error("NewKey left the key bytes in the caller's slice")
	}
	var ks Keys
	if err := ks.Add(k); err != nil {
		t.Fatal(err)
	}
	if err := ks.Add(k); !errors.Is(err, ErrKey) {
		t.Errorf("a key added twice: %v", err)
	}
	if _, err := ks.Use("secret0"); err != nil {
		t.Fatal(err)
	}
	if err := ks.Destroy("secret0"); !errors.Is(err, ErrKey) {
		t.Errorf("destroy a key in use: %v", err)
	}
	if l := ks.List(); len(l) != 1 || l[0] != (KeyInfo{Name: "secret0", Cipher: CipherXTS, Bits: 128, Users: 1}) {
		t.Errorf("list %+v", l)
	}
	ks.Release(k)
	if err := ks.Destroy("secret0"); err != nil {
		t.Error(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "k")
	os.WriteFile(path, []byte("00112233445566778899aabbccddeeff\n0102030405060708090a0b0c0d0e0f10\n"), 0o644)
	if _, err := LoadKeyFile("f", path); !errors.Is(err, ErrKey) || strings.Contains(err.Error(), "0011") {
		t.Errorf("a 0644 key file: %v", err)
	}
	os.Chmod(path, 0o600)
	if k, err := LoadKeyFile("f", path); err != nil || k.Bits() != 128 {
		t.Errorf("key file: %v %v", k, err)
	}
	if _, err := ParseHexKey("x", "AES_CBC", "00", "01"); !errors.Is(err, ErrKey) {
		t.Errorf("AES_CBC: %v", err)
	}
	if _, err := ParseHexKey("x", CipherXTS, "zz112233445566778899aabbccddeeff", "0102030405060708090a0b0c0d0e0f10"); err == nil || strings.Contains(err.Error(), "zz11") {
		t.Errorf("bad hex: %v", err)
	}
}

// TestZeroAllocs: a write (encrypted into a pooled buffer) and a read
// (decrypted in place) allocate nothing.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("x/crypto/xts takes its tweak from a sync.Pool, which the race detector drains on purpose")
	}
	s := stagetest.NewStack(t, 1, null.Driver{ReadsUntouched: true}, reactors.Options{})
	s.Disks(t, 4096, 1<<12, "N0")
	raw := make([]byte, 64)
	for i := range raw {
		raw[i] = byte(i)
	}
	st, err := New(s.Reg, Config{Name: "C0", Base: "N0", Key: keyOf(t, "k", raw)})
	s.Add(t, st, err)
	d, err := s.Reg.Open("C0", true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r := s.Set.Get(0)
	ch := stagetest.Channel(t, r, d)
	for _, typ := range []bdev.IOType{bdev.IOWrite, bdev.IORead} {
		var allocs float64
		var failed int
		r.Call(func() {
			lp := stagetest.NewLoop(ch, typ, 4, 1)
			lp.Run(64, nil)
			allocs = testing.AllocsPerRun(100, func() { failed, _ = lp.Run(4, nil) })
			lp.Free()
		})
		if allocs != 0 || failed != 0 {
			t.Errorf("%v: %v allocations per 4 IOs (%d failed), want 0", typ, allocs, failed)
		}
	}
}
