package guest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
)

// The Linux initramfs is a "newc" cpio archive (Documentation/driver-api/
// early-userspace/buffer-format.rst): per entry a 110-byte ASCII header
// (magic "070701", then 13 fields of 8 hex digits), the NUL-terminated name
// padded to a multiple of 4, the data padded to a multiple of 4; the archive
// ends with an entry named "TRAILER!!!". The kernel accepts several archives
// back to back as long as each starts on a 4-byte boundary, and a later entry
// replaces an earlier file of the same name: that is how a run's archive is
// laid over the cached base.

const (
	cpioMagic      = "070701"
	cpioHeaderSize = 110 // 6 bytes of magic + 13 fields × 8 hex digits
	cpioFieldCount = 13
	cpioAlign      = 4
	cpioTrailer    = "TRAILER!!!"
	// cpioNameSizeMax bounds a name when reading: PATH_MAX on Linux, which is
	// also what the kernel's unpacker allows.
	cpioNameSizeMax = 4096
	// cpioFileSizeMax bounds one file when reading: the fields are 32 bits.
	cpioFileSizeMax = 1<<32 - 1
)

// Fail to compile unless the header is exactly the magic plus the fields.
const (
	_ = uint(cpioHeaderSize - len(cpioMagic) - cpioFieldCount*8)
	_ = uint(len(cpioMagic) + cpioFieldCount*8 - cpioHeaderSize)
)

// Field indexes of the newc header, after the magic.
const (
	cpioFieldIno = iota
	cpioFieldMode
	cpioFieldUID
	cpioFieldGID
	cpioFieldNlink
	cpioFieldMtime
	cpioFieldFileSize
	cpioFieldDevMajor
	cpioFieldDevMinor
	cpioFieldRdevMajor
	cpioFieldRdevMinor
	cpioFieldNameSize
	cpioFieldCheck
)

// File type bits of a cpio mode (the st_mode values of <sys/stat.h>).
const (
	cpioTypeMask = 0o170000
	cpioTypeDir  = 0o040000
	cpioTypeFile = 0o100000
	cpioTypeLink = 0o120000
	cpioTypeChar = 0o020000
)

// cpioWriter writes a newc archive. Entries get owner 0:0, mtime 0 and
// increasing inode numbers, so the same input always makes the same bytes
// (the base archive is cached by a hash of its inputs, not of its bytes).
// Every parent directory of an entry is emitted before the entry, because
// the kernel creates files with a plain open(O_CREAT) and fails under a
// missing directory. Not safe for concurrent use.
type cpioWriter struct {
	w       *bufio.Writer
	offset  int64
	ino     uint32
	entries map[string]uint32 // name → type bits of what was emitted under it
	err     error             // first write error; later calls return it
}

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: bufio.NewWriterSize(w, 1<<16), entries: map[string]uint32{}}
}

// cpioName turns a guest path ("/bin/sh" or "bin/sh") into the relative,
// clean name the archive stores, and rejects what the kernel would not
// place where the caller meant (escaping "..", empty names).
func cpioName(p string) (string, error) {
	if p == "" || strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("cpio name %q: want a non-empty path without NUL", p)
	}
	clean := strings.TrimPrefix(path.Clean("/"+p), "/")
	if clean == "" {
		return "", fmt.Errorf("cpio name %q: names the root itself", p)
	}
	if len(clean)+1 > cpioNameSizeMax {
		return "", fmt.Errorf("cpio name %q: %d bytes, want under %d", p, len(clean), cpioNameSizeMax)
	}
	return clean, nil
}

// Dir adds a directory (and its missing parents). Adding the same directory
// twice is a no-op.
func (c *cpioWriter) Dir(name string, perm fs.FileMode) error {
	name, err := cpioName(name)
	if err != nil {
		return err
	}
	return c.dir(name, perm)
}

func (c *cpioWriter) dir(name string, perm fs.FileMode) error {
	if t, ok := c.entries[name]; ok {
		if t != cpioTypeDir {
			return fmt.Errorf("cpio: %s: directory over an earlier non-directory", name)
		}
		return nil
	}
	if err := c.parents(name); err != nil {
		return err
	}
	return c.entry(name, cpioTypeDir|uint32(perm.Perm()), 0, 0, 0, nil)
}

func (c *cpioWriter) parents(name string) error {
	if dir := path.Dir(name); dir != "." {
		return c.dir(dir, 0o755)
	}
	return nil
}

// File adds a regular file with the given contents.
func (c *cpioWriter) File(name string, perm fs.FileMode, data []byte) error {
	return c.FileFrom(name, perm, int64(len(data)), bytes.NewReader(data))
}

// FileFrom adds a regular file of size bytes read from r.
func (c *cpioWriter) FileFrom(name string, perm fs.FileMode, size int64, r io.Reader) error {
	name, err := cpioName(name)
	if err != nil {
		return err
	}
	if size < 0 || size > cpioFileSizeMax {
		return fmt.Errorf("cpio: %s: size %d, want 0..%d", name, size, int64(cpioFileSizeMax))
	}
	if err := c.claim(name); err != nil {
		return err
	}
	return c.entry(name, cpioTypeFile|uint32(perm.Perm()), 0, 0, size, r)
}

// HostFile adds the host file src (following symlinks) as name.
func (c *cpioWriter) HostFile(name, src string, perm fs.FileMode) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("cpio: %s: source %s is a %v, want a regular file", name, src, st.Mode().Type())
	}
	return c.FileFrom(name, perm, st.Size(), f)
}

// Symlink adds a symbolic link name → target.
func (c *cpioWriter) Symlink(name, target string) error {
	name, err := cpioName(name)
	if err != nil {
		return err
	}
	if target == "" || strings.ContainsRune(target, 0) {
		return fmt.Errorf("cpio: %s: symlink target %q, want non-empty without NUL", name, target)
	}
	if err := c.claim(name); err != nil {
		return err
	}
	return c.entry(name, cpioTypeLink|0o777, 0, 0, int64(len(target)), strings.NewReader(target))
}

// CharDev adds a character device node.
func (c *cpioWriter) CharDev(name string, perm fs.FileMode, major, minor uint32) error {
	name, err := cpioName(name)
	if err != nil {
		return err
	}
	if err := c.claim(name); err != nil {
		return err
	}
	return c.entry(name, cpioTypeChar|uint32(perm.Perm()), major, minor, 0, nil)
}

// Has reports whether name was already added.
func (c *cpioWriter) Has(name string) bool {
	name, err := cpioName(name)
	_, ok := c.entries[name]
	return err == nil && ok
}

// claim makes the parents of a non-directory entry and refuses a second
// entry of the same name: in one archive that is always a caller's mistake.
func (c *cpioWriter) claim(name string) error {
	if _, ok := c.entries[name]; ok {
		return fmt.Errorf("cpio: %s: added twice", name)
	}
	return c.parents(name)
}

func (c *cpioWriter) entry(name string, mode, rdevMajor, rdevMinor uint32, size int64, r io.Reader) error {
	if c.err != nil {
		return c.err
	}
	c.entries[name] = mode & cpioTypeMask
	c.ino++
	var fields [cpioFieldCount]uint32
	fields[cpioFieldIno] = c.ino
	fields[cpioFieldMode] = mode
	fields[cpioFieldNlink] = 1
	if mode&cpioTypeMask == cpioTypeDir {
		fields[cpioFieldNlink] = 2
	}
	fields[cpioFieldFileSize] = uint32(size)
	fields[cpioFieldRdevMajor] = rdevMajor
	fields[cpioFieldRdevMinor] = rdevMinor
	fields[cpioFieldNameSize] = uint32(len(name) + 1)
	c.err = c.writeHeader(fields, name)
	if c.err == nil && r != nil {
		var n int64
		n, c.err = io.Copy(c.counter(), io.LimitReader(r, size))
		if c.err == nil && n != size {
			c.err = fmt.Errorf("cpio: %s: source gave %d bytes, want %d", name, n, size)
		}
	}
	if c.err == nil {
		c.err = c.pad()
	}
	return c.err
}

func (c *cpioWriter) writeHeader(fields [cpioFieldCount]uint32, name string) error {
	var b strings.Builder
	b.Grow(cpioHeaderSize + len(name) + 1)
	b.WriteString(cpioMagic)
	for _, f := range fields {
		fmt.Fprintf(&b, "%08X", f)
	}
	b.WriteString(name)
	b.WriteByte(0)
	if _, err := io.WriteString(c.counter(), b.String()); err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) pad() error {
	n := (cpioAlign - c.offset%cpioAlign) % cpioAlign
	_, err := c.counter().Write(make([]byte, n))
	return err
}

// Close writes the trailer and flushes. The archive ends 4-byte aligned, so
// another archive may follow it directly.
func (c *cpioWriter) Close() error {
	if c.err != nil {
		return c.err
	}
	var fields [cpioFieldCount]uint32
	fields[cpioFieldNlink] = 1
	fields[cpioFieldNameSize] = uint32(len(cpioTrailer) + 1)
	if err := c.writeHeader(fields, cpioTrailer); err != nil {
		return err
	}
	return c.w.Flush()
}

func (c *cpioWriter) counter() io.Writer { return countWriter{c} }

type countWriter struct{ c *cpioWriter }

func (w countWriter) Write(p []byte) (int, error) {
	n, err := w.c.w.Write(p)
	w.c.offset += int64(n)
	return n, err
}

// cpioEntry is one entry read back by readCPIO.
type cpioEntry struct {
	Name        string
	Mode        uint32 // type bits and permissions
	RdevMajor   uint32
	RdevMinor   uint32
	Data        []byte // file contents or symlink target
	ArchiveNext bool   // first entry of a following archive (after a trailer)
}

// errCPIOFormat is wrapped by every readCPIO format error.
var errCPIOFormat = errors.New("not a newc cpio archive")

// readCPIO reads every entry of one or more concatenated newc archives, the
// way the kernel does: zero padding between archives is skipped. It is the
// reference the writer is tested against, and lets tests look inside a
// built initramfs.
func readCPIO(r io.Reader) ([]cpioEntry, error) {
	br := bufio.NewReader(r)
	var out []cpioEntry
	var offset int64
	next := false
	for {
		// Skip the zero padding the kernel allows between archives.
		for {
			b, err := br.Peek(1)
			if err == io.EOF {
				return out, nil
			}
			if err != nil {
				return out, err
			}
			if b[0] != 0 {
				break
			}
			br.Discard(1)
			offset++
		}
		if offset%cpioAlign != 0 {
			return out, fmt.Errorf("offset %d: header not %d-byte aligned: %w", offset, cpioAlign, errCPIOFormat)
		}
		e, n, err := readCPIOEntry(br, offset)
		offset += n
		if err != nil {
			return out, err
		}
		if e.Name == cpioTrailer {
			next = true
			continue
		}
		e.ArchiveNext, next = next, false
		out = append(out, e)
	}
}

func readCPIOEntry(br *bufio.Reader, offset int64) (cpioEntry, int64, error) {
	var hdr [cpioHeaderSize]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return cpioEntry{}, 0, fmt.Errorf("offset %d: header: %w", offset, err)
	}
	if string(hdr[:len(cpioMagic)]) != cpioMagic {
		return cpioEntry{}, 0, fmt.Errorf("offset %d: magic %q, want %q: %w", offset, hdr[:len(cpioMagic)], cpioMagic, errCPIOFormat)
	}
	var f [cpioFieldCount]uint32
	for i := range f {
		at := len(cpioMagic) + 8*i
		v, err := strconv.ParseUint(string(hdr[at:at+8]), 16, 32)
		if err != nil {
			return cpioEntry{}, 0, fmt.Errorf("offset %d: field %d %q: %w", offset+int64(at), i, hdr[at:at+8], errCPIOFormat)
		}
		f[i] = uint32(v)
	}
	nameSize := int64(f[cpioFieldNameSize])
	if nameSize < 2 || nameSize > cpioNameSizeMax {
		return cpioEntry{}, 0, fmt.Errorf("offset %d: namesize %d, want 2..%d: %w", offset, nameSize, cpioNameSizeMax, errCPIOFormat)
	}
	n := int64(cpioHeaderSize)
	name := make([]byte, alignUp(n+nameSize)-n)
	if _, err := io.ReadFull(br, name); err != nil {
		return cpioEntry{}, n, fmt.Errorf("offset %d: name: %w", offset, err)
	}
	n += int64(len(name))
	if name[nameSize-1] != 0 {
		return cpioEntry{}, n, fmt.Errorf("offset %d: name not NUL-terminated: %w", offset, errCPIOFormat)
	}
	size := int64(f[cpioFieldFileSize])
	data := make([]byte, alignUp(size))
	if _, err := io.ReadFull(br, data); err != nil {
		return cpioEntry{}, n, fmt.Errorf("offset %d: data of %d bytes: %w", offset, size, err)
	}
	n += int64(len(data))
	if size == 0 {
		data = nil
	}
	return cpioEntry{
		Name:      string(name[:nameSize-1]),
		Mode:      f[cpioFieldMode],
		RdevMajor: f[cpioFieldRdevMajor],
		RdevMinor: f[cpioFieldRdevMinor],
		Data:      data[:size],
	}, n, nil
}

func alignUp(n int64) int64 { return (n + cpioAlign - 1) &^ (cpioAlign - 1) }
