package uring

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/drivers/malloc"
	iouring "github.com/sluice-storage/sluice/internal/uring"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/bdev/bdevtest"
)

var seedFlag = flag.Uint64("seed", 0, "metamorphic seed; 0 picks one from the clock")

func needURing(t testing.TB) {
	t.Helper()
	if err := iouring.Supported(); err != nil {
		t.Skip(err)
	}
}

// TestMetamorphic runs one seeded op stream on malloc and on uring (a file;
// two adaptive reactors, or one polling: two spinning reactors would starve
// the test goroutine on a two-core machine) and wants the same history: same
// statuses, and every read returns the same bytes. Neither does compares:
// the bdev layer emulates them (compare-and-write under a range lock).
func TestMetamorphic(t *testing.T) {
	needURing(t)
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	for _, bs := range []uint32{512, 4096} {
		for _, mode := range []reactors.Mode{reactors.ModeAdaptive, reactors.ModePoll} {
			t.Run(fmt.Sprintf("%d/%v", bs, mode), func(t *testing.T) {
				const blocks = 1024
				n := 2
				if mode == reactors.ModePoll {
					n = 1
				}
				ops := bdevtest.Ops(seed, 300, n, blocks, 64)
				s := bdevtest.NewStack(t, n, reactors.Options{Mode: mode})
				s.Reg.RegisterDriver(malloc.Name, malloc.Driver{})
				s.Reg.RegisterDriver(Name, Driver{QueueDepth: 8})
				dir := t.TempDir()
				for _, spec := range []bdev.Spec{
					{Name: "m", Driver: malloc.Name, BlockSize: bs, Blocks: blocks},
					{Name: "u", Driver: Name, BlockSize: bs, Blocks: blocks, Path: filepath.Join(dir, "u.img")},
					{Name: "u2", Driver: Name, BlockSize: bs, Blocks: blocks, Path: filepath.Join(dir, "u2.img")},
				} {
					if _, err := s.Reg.Create(spec); err != nil {
						t.Fatal(err)
					}
				}
				rerun := fmt.Sprintf("go test ./drivers/uring -run 'TestMetamorphic/%d/%v' -seed %d", bs, mode, seed)
				want := bdevtest.Run(t, s.Open(t, "m"), ops)
				fixed := bdevtest.Run(t, s.OpenPooled(t, "u"), ops) // READ_FIXED, WRITE_FIXED
				bdevtest.Compare(t, seed, "uring (fixed buffers)", fixed, "malloc", want, rerun)
				plain := bdevtest.Run(t, s.Open(t, "u2"), ops) // READ, WRITE
				bdevtest.Compare(t, seed, "uring", plain, "malloc", want, rerun)
			})
		}
	}
}

func TestCreate(t *testing.T) {
	needURing(t)
	dir := t.TempDir()
	small := filepath.Join(dir, "small.img")
	if err := os.WriteFile(small, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "new.img")
	b, err := Driver{}.Create(bdev.Spec{Name: "u", BlockSize: 4096, Blocks: 256, Path: missing})
	if err != nil {
		t.Fatalf("create on a missing file: %v", err)
	}
	b.Close()
	if st, err := os.Stat(missing); err != nil || st.Size() != 256*4096 {
		t.Fatalf("created file: %v, size %d, want %d", err, st.Size(), 256*4096)
	}
	tests := []struct {
		spec bdev.Spec
		is   error
		text string
	}{
		{bdev.Spec{Name: "u", BlockSize: 4096, Blocks: 2, Path: small}, ErrTooSmall, "holds 4096 bytes, the bdev needs 8192"},
		{bdev.Spec{Name: "u", BlockSize: 4096, Blocks: 2, Path: "rel.img"}, nil, `path "rel.img", want an absolute path`},
		{bdev.Spec{Name: "u", BlockSize: 4096, Blocks: 2, Path: dir}, nil, "is a directory"},
		{bdev.Spec{Name: "u", BlockSize: 4096, Blocks: 2, Path: filepath.Join(dir, "no", "such")}, os.ErrNotExist, "create"},
	}
	for _, tc := range tests {
		_, err := Driver{}.Create(tc.spec)
		if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("Create(%s): %v, want %v containing %q", tc.spec.Path, err, tc.is, tc.text)
		}
	}
	if _, err := (Driver{QueueDepth: 3}).Create(bdev.Spec{Name: "u", BlockSize: 4096, Blocks: 2, Path: missing}); err == nil ||
		!strings.Contains(err.Error(), "queue depth 3") {
		t.Errorf("queue depth 3: %v, want it refused", err)
	}
}

// TestAdaptiveWakes: an adaptive reactor that falls asleep with IO at the
// kernel is woken by the ring's eventfd; every IO completes, and the reactor
// did sleep while waiting (else the test proved nothing).
func TestAdaptiveWakes(t *testing.T) {
	needURing(t)
	s := bdevtest.NewStack(t, 1, reactors.Options{Mode: reactors.ModeAdaptive, IdleAfter: 10 * time.Microsecond})
	s.Reg.RegisterDriver(Name, Driver{})
	const bs, blocks = 4096, 16384 // 64 MiB
	if _, err := s.Reg.Create(bdev.Spec{Name: "u", Driver: Name, BlockSize: bs, Blocks: blocks,
		Path: filepath.Join(t.TempDir(), "disk.img")}); err != nil {
		t.Fatal(err)
	}
	h := s.Open(t, "u")
	r := s.Set.Get(0)
	before := r.Stats().Sleeps
	for i := 0; i < 20 && r.Stats().Sleeps == before; i++ {
		// 256 KiB writes and flushes: each takes long enough to sleep on.
		if st, detail := h.Do(t, 0, bdev.IOWrite, uint64(i*64), 64); st != bdev.StatusSuccess {
			t.Fatalf("write: %s", detail)
		}
		if st, detail := h.Do(t, 0, bdev.IOFlush, 0, 0); st != bdev.StatusSuccess {
			t.Fatalf("flush: %s", detail)
		}
	}
	if r.Stats().Sleeps == before {
		t.Skip("the reactor never slept during an IO: the IOs were too quick to test waking")
	}
}

// TestErrnoStatus: an IO the kernel refuses ends with StatusErrno and the
// errno (a read past the end of a shrunk file is short: EIO).
func TestErrnoStatus(t *testing.T) {
	needURing(t)
	s := bdevtest.NewStack(t, 1, reactors.Options{})
	s.Reg.RegisterDriver(Name, Driver{})
	path := filepath.Join(t.TempDir(), "disk.img")
	if _, err := s.Reg.Create(bdev.Spec{Name: "u", Driver: Name, BlockSize: 4096, Blocks: 16, Path: path}); err != nil {
		t.Fatal(err)
	}
	h := s.Open(t, "u")
	if err := os.Truncate(path, 4096); err != nil { // the file shrinks under the bdev
		t.Fatal(err)
	}
	st, detail := h.Do(t, 0, bdev.IORead, 8, 1)
	if st != bdev.StatusErrno || !strings.Contains(detail, "input/output error") {
		t.Fatalf("read past the file's end: %s, want errno EIO", detail)
	}
}
