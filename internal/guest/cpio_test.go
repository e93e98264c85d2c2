package guest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeSample writes a small archive with one entry of every kind.
func writeSample(t *testing.T, buf *bytes.Buffer) {
	t.Helper()
	w := newCPIOWriter(buf)
	steps := []error{
		w.File("/etc/hosts", 0o644, []byte("127.0.0.1 localhost\n")),
		w.File("bin/odd", 0o755, []byte("abc")), // length not a multiple of 4
		w.File("/empty", 0o600, nil),
		w.Symlink("/sbin", "bin"),
		w.CharDev("/dev/console", 0o600, 5, 1),
		w.Dir("/a/b/c", 0o700),
		w.Dir("/a/b", 0o755), // already there: a no-op
		w.Close(),
	}
	if err := errors.Join(steps...); err != nil {
		t.Fatal(err)
	}
}

func TestCPIORoundTrip(t *testing.T) {
	var buf bytes.Buffer
	writeSample(t, &buf)
	if buf.Len()%cpioAlign != 0 {
		t.Errorf("archive of %d bytes, want a multiple of %d", buf.Len(), cpioAlign)
	}
	got, err := readCPIO(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	want := []cpioEntry{
		{Name: "etc", Mode: cpioTypeDir | 0o755},
		{Name: "etc/hosts", Mode: cpioTypeFile | 0o644, Data: []byte("127.0.0.1 localhost\n")},
		{Name: "bin", Mode: cpioTypeDir | 0o755},
		{Name: "bin/odd", Mode: cpioTypeFile | 0o755, Data: []byte("abc")},
		{Name: "empty", Mode: cpioTypeFile | 0o600},
		{Name: "sbin", Mode: cpioTypeLink | 0o777, Data: []byte("bin")},
		{Name: "dev", Mode: cpioTypeDir | 0o755},
		{Name: "dev/console", Mode: cpioTypeChar | 0o600, RdevMajor: 5, RdevMinor: 1},
		{Name: "a", Mode: cpioTypeDir | 0o755},
		{Name: "a/b", Mode: cpioTypeDir | 0o755},
		{Name: "a/b/c", Mode: cpioTypeDir | 0o700},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back:\n%+v\nwant\n%+v", got, want)
	}
}

// TestCPIOConcatenated checks the layout Run uses: a second archive after
// the first, whose entries the reader (like the kernel) sees after the
// trailer.
func TestCPIOConcatenated(t *testing.T) {
	var buf bytes.Buffer
	w := newCPIOWriter(&buf)
	if err := errors.Join(w.File("/x", 0o644, []byte("first")), w.Close()); err != nil {
		t.Fatal(err)
	}
	w2 := newCPIOWriter(&buf)
	w2.offset = int64(buf.Len())
	if err := errors.Join(w2.File("/x", 0o644, []byte("second")), w2.Close()); err != nil {
		t.Fatal(err)
	}
	got, err := readCPIO(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[0].Data) != "first" || string(got[1].Data) != "second" || !got[1].ArchiveNext {
		t.Errorf("entries %+v, want x=first then x=second starting the next archive", got)
	}
}

func TestCPIOWriterRejects(t *testing.T) {
	tests := []struct {
		name string
		add  func(w *cpioWriter) error
		want string // substring of the error
	}{
		{"empty name", func(w *cpioWriter) error { return w.File("", 0o644, nil) }, "non-empty"},
		{"root", func(w *cpioWriter) error { return w.File("/", 0o644, nil) }, "root itself"},
		{"NUL in name", func(w *cpioWriter) error { return w.File("a\x00b", 0o644, nil) }, "NUL"},
		{"twice", func(w *cpioWriter) error {
			return errors.Join(w.File("/f", 0o644, nil), w.File("/f", 0o644, nil))
		}, "added twice"},
		{"dir over file", func(w *cpioWriter) error {
			return errors.Join(w.File("/f", 0o644, nil), w.Dir("/f", 0o755))
		}, "over an earlier non-directory"},
		{"file under file", func(w *cpioWriter) error {
			return errors.Join(w.File("/f", 0o644, nil), w.File("/f/g", 0o644, nil))
		}, "over an earlier non-directory"},
		{"short source", func(w *cpioWriter) error {
			return w.FileFrom("/f", 0o644, 10, strings.NewReader("abc"))
		}, "gave 3 bytes, want 10"},
		{"empty symlink", func(w *cpioWriter) error { return w.Symlink("/l", "") }, "symlink target"},
	}
	for _, tc := range tests {
		err := tc.add(newCPIOWriter(&bytes.Buffer{}))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestCPIOName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/bin/sh", "bin/sh"},
		{"bin/sh", "bin/sh"},
		{"/a/../b", "b"},
		{"/../../etc/x", "etc/x"}, // cannot climb out of the archive's root
		{"//a//b/", "a/b"},
	}
	for _, tc := range tests {
		if got, err := cpioName(tc.in); err != nil || got != tc.want {
			t.Errorf("cpioName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestReadCPIORejects(t *testing.T) {
	var good bytes.Buffer
	writeSample(t, &good)
	tests := []struct {
		name string
		data []byte
	}{
		{"bad magic", append([]byte("070707"), good.Bytes()[6:]...)},
		{"bad hex", append(append([]byte("070701"), []byte("zzzzzzzz")...), good.Bytes()[14:]...)},
		{"truncated", good.Bytes()[:good.Len()/2]},
		{"misaligned", append([]byte{1}, good.Bytes()...)},
	}
	for _, tc := range tests {
		if _, err := readCPIO(bytes.NewReader(tc.data)); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// TestCPIOAgainstGNUCpio has GNU cpio, an implementation we did not write,
// list and extract our archive.
func TestCPIOAgainstGNUCpio(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("GNU cpio not installed (apt-get install cpio); the round trip test still covers the format")
	}
	var buf bytes.Buffer
	writeSample(t, &buf)
	list := exec.Command("cpio", "-t", "--quiet")
	list.Stdin = bytes.NewReader(buf.Bytes())
	out, err := list.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v\n%s", err, out)
	}
	want := "etc\netc/hosts\nbin\nbin/odd\nempty\nsbin\ndev\ndev/console\na\na/b\na/b/c\n"
	if string(out) != want {
		t.Errorf("cpio -t:\n%s\nwant\n%s", out, want)
	}
	dir := t.TempDir()
	extract := exec.Command("cpio", "-i", "-d", "--quiet", "--no-absolute-filenames")
	extract.Dir = dir
	extract.Stdin = bytes.NewReader(buf.Bytes())
	if out, err := extract.CombinedOutput(); err != nil && os.Geteuid() == 0 {
		t.Fatalf("cpio -i: %v\n%s", err, out) // only root may create the device node
	}
	if b, err := os.ReadFile(filepath.Join(dir, "etc/hosts")); err != nil || string(b) != "127.0.0.1 localhost\n" {
		t.Errorf("extracted etc/hosts = %q, %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "sbin")); err != nil || l != "bin" {
		t.Errorf("extracted sbin → %q, %v; want bin", l, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "bin/odd")); err != nil || st.Mode().Perm() != 0o755 || st.Size() != 3 {
		t.Errorf("extracted bin/odd: %v, %v; want 3 bytes, mode 0755", st, err)
	}
}
