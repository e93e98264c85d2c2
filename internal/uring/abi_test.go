package uring

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSQELayout checks each setter writes the kernel's offset and width (from
// struct io_uring_sqe) and nothing else.
func TestSQELayout(t *testing.T) {
	tests := []struct {
		name  string
		set   func(s *SQE)
		off   int
		bytes []byte // little-endian as written; flipped on big-endian hosts
	}{
		{"opcode", func(s *SQE) { s.SetOpcode(OpWriteFixed) }, 0, []byte{5}},
		{"flags", func(s *SQE) { s.SetFlags(FlagFixedFile | FlagIOLink) }, 1, []byte{0x05}},
		{"ioprio", func(s *SQE) { s.SetIOPrio(0x0102) }, 2, []byte{2, 1}},
		{"fd", func(s *SQE) { s.SetFd(-2) }, 4, []byte{0xfe, 0xff, 0xff, 0xff}},
		{"off", func(s *SQE) { s.SetOff(0x0102030405060708) }, 8, []byte{8, 7, 6, 5, 4, 3, 2, 1}},
		{"addr", func(s *SQE) { s.SetAddr(0x1122334455667788) }, 16,
			[]byte{0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11}},
		{"len", func(s *SQE) { s.SetLen(0x01020304) }, 24, []byte{4, 3, 2, 1}},
		{"rw_flags", func(s *SQE) { s.SetRWFlags(unix.RWF_NOWAIT | unix.RWF_DSYNC) }, 28, []byte{0x0a, 0, 0, 0}},
		{"user_data", func(s *SQE) { s.SetUserData(0xdeadbeefcafef00d) }, 32,
			[]byte{0x0d, 0xf0, 0xfe, 0xca, 0xef, 0xbe, 0xad, 0xde}},
		{"buf_index", func(s *SQE) { s.SetBufIndex(0x0304) }, 40, []byte{4, 3}},
	}
	for _, tc := range tests {
		var s SQE
		tc.set(&s)
		want := make([]byte, len(tc.bytes))
		copy(want, tc.bytes)
		if bigEndian && len(want) > 1 {
			for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
				want[i], want[j] = want[j], want[i]
			}
		}
		for i, b := range s {
			w := byte(0)
			if i >= tc.off && i < tc.off+len(want) {
				w = want[i-tc.off]
			}
			if b != w {
				t.Errorf("%s: byte %d = %#x, want %#x (sqe % x)", tc.name, i, b, w, s[:])
				break
			}
		}
	}
}

// TestPrep checks each prep helper against what liburing's io_uring_prep_*
// writes for the same call.
func TestPrep(t *testing.T) {
	buf := make([]byte, 8192)
	addr := bufAddr(buf)
	iovs := make([]unix.Iovec, 3)
	iovAddr := uint64(uintptrOf(&iovs[0]))
	type fields struct {
		op       Op
		fd       int32
		off      uint64
		addr     uint64
		len      uint32
		opFlags  uint32
		bufIndex uint16
	}
	pollIn := uint32(unix.POLLIN)
	if bigEndian {
		pollIn <<= 16
	}
	tests := []struct {
		name string
		prep func(s *SQE)
		want fields
	}{
		{"nop", func(s *SQE) { s.PrepNop() }, fields{op: OpNop, fd: -1}},
		{"read", func(s *SQE) { s.PrepRead(7, buf, 4096) },
			fields{op: OpRead, fd: 7, off: 4096, addr: addr, len: 8192}},
		{"write", func(s *SQE) { s.PrepWrite(7, buf[:512], 0) }, fields{op: OpWrite, fd: 7, addr: addr, len: 512}},
		{"readv", func(s *SQE) { s.PrepReadv(7, iovs, 1<<40) },
			fields{op: OpReadv, fd: 7, off: 1 << 40, addr: iovAddr, len: 3}},
		{"writev", func(s *SQE) { s.PrepWritev(7, iovs[:2], 8) },
			fields{op: OpWritev, fd: 7, off: 8, addr: iovAddr, len: 2}},
		{"read_fixed", func(s *SQE) { s.PrepReadFixed(7, buf, 0, 3) },
			fields{op: OpReadFixed, fd: 7, addr: addr, len: 8192, bufIndex: 3}},
		{"write_fixed", func(s *SQE) { s.PrepWriteFixed(7, buf, 0, 65535) },
			fields{op: OpWriteFixed, fd: 7, addr: addr, len: 8192, bufIndex: 65535}},
		{"fdatasync", func(s *SQE) { s.PrepFsync(7, FsyncDatasync) }, fields{op: OpFsync, fd: 7, opFlags: 1}},
		{"punch hole", func(s *SQE) {
			s.PrepFallocate(7, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 4096, 8192)
		}, fields{op: OpFallocate, fd: 7, off: 4096, addr: 8192, len: 3}},
		{"zero range", func(s *SQE) { s.PrepFallocate(7, unix.FALLOC_FL_ZERO_RANGE, 0, 1<<20) },
			fields{op: OpFallocate, fd: 7, addr: 1 << 20, len: 0x10}},
		{"send", func(s *SQE) { s.PrepSend(9, buf[:5], unix.MSG_NOSIGNAL) },
			fields{op: OpSend, fd: 9, addr: addr, len: 5, opFlags: unix.MSG_NOSIGNAL}},
		{"recv", func(s *SQE) { s.PrepRecv(9, buf, unix.MSG_WAITALL) },
			fields{op: OpRecv, fd: 9, addr: addr, len: 8192, opFlags: unix.MSG_WAITALL}},
		{"poll_add", func(s *SQE) { s.PrepPollAdd(9, unix.POLLIN) }, fields{op: OpPollAdd, fd: 9, opFlags: pollIn}},
		{"cancel", func(s *SQE) { s.PrepCancel(0xabc) }, fields{op: OpAsyncCancel, fd: -1, addr: 0xabc}},
	}
	for _, tc := range tests {
		var s SQE
		tc.prep(&s)
		got := fields{s.Opcode(), s.Fd(), s.Off(), s.Addr(), s.Len(), s.OpFlags(), s.BufIndex()}
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
		if s.Flags() != 0 || s.UserData() != 0 || s.IOPrio() != 0 || s.FileIndex() != 0 {
			t.Errorf("%s: wrote fields it does not own: sqe % x", tc.name, s[:])
		}
	}
}

func TestSetFlagsRejectsUnknownBits(t *testing.T) {
	defer func() {
		if msg, _ := recover().(string); !strings.Contains(msg, "0x80") {
			t.Errorf("SetFlags(0x80) panic = %q, want one naming 0x80", msg)
		}
	}()
	var s SQE
	s.SetFlags(0x80)
}

func TestCQEAccessors(t *testing.T) {
	var c CQE
	ne.PutUint64(c[0:], 0x0102030405060708)
	ne.PutUint32(c[8:], uint32(0xfffffff2)) // -14, -EFAULT
	ne.PutUint32(c[12:], CQEFlagMore|CQEFlagSockNonempty)
	if c.UserData() != 0x0102030405060708 || c.Res() != -int32(unix.EFAULT) ||
		c.Flags() != CQEFlagMore|CQEFlagSockNonempty {
		t.Errorf("CQE % x: user_data %#x res %d flags %#x", c[:], c.UserData(), c.Res(), c.Flags())
	}
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name    string
		entries uint32
		opts    Options
		blame   []string // substrings the error must hold; nil: valid
	}{
		{"zero entries", 0, Options{}, []string{"entries 0", "power of two in 1..32768"}},
		{"entries not a power of two", 100, Options{}, []string{"entries 100"}},
		{"entries over the kernel's max", 65536, Options{}, []string{"entries 65536"}},
		{"CQ smaller than SQ", 64, Options{CQEntries: 32}, []string{"CQEntries 32", "64..65536"}},
		{"CQ not a power of two", 64, Options{CQEntries: 100}, []string{"CQEntries 100"}},
		{"SQPOLL knobs without SQPOLL", 8, Options{SQPollPinned: true}, []string{"without SQPoll"}},
		{"every problem at once", 3, Options{CQEntries: 5, SQPollIdle: 1},
			[]string{"entries 3", "CQEntries 5", "without SQPoll"}},
	}
	for _, tc := range tests {
		_, err := New(tc.entries, tc.opts)
		if err == nil {
			t.Errorf("%s: New(%d, %+v) succeeded", tc.name, tc.entries, tc.opts)
			continue
		}
		for _, s := range tc.blame {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, s)
			}
		}
	}
}

func TestExplainSetup(t *testing.T) {
	facts := hostFacts{release: "6.18.0", memlock: unix.Rlimit{Cur: 8 << 20, Max: unix.RLIM_INFINITY}}
	with := func(disabled, group string) hostFacts {
		h := facts
		h.disabled, h.group = disabled, group
		return h
	}
	tests := []struct {
		name  string
		errno unix.Errno
		flags uint32
		facts hostFacts
		want  []string
	}{
		{"no syscall", unix.ENOSYS, 0, facts, []string{"6.18.0", "5.1", "CONFIG_IO_URING", "seccomp"}},
		{"sysctl 2", unix.EPERM, 0, with("2", ""), []string{"io_uring_disabled is 2", "every process", "=0"}},
		{"sysctl 1", unix.EPERM, 0, with("1", "1001"),
			[]string{"io_uring_disabled is 1", "CAP_SYS_ADMIN", "group 1001"}},
		{"sysctl 0", unix.EPERM, 0, with("0", ""), []string{"io_uring_disabled is 0", "seccomp"}},
		{"no sysctl", unix.EPERM, 0, with("", ""), []string{"io_uring_disabled", "absent", "seccomp"}},
		{"sqpoll before 5.11", unix.EPERM, SetupSQPoll, facts, []string{"SQPOLL", "CAP_SYS_ADMIN", "5.11"}},
		{"memlock", unix.ENOMEM, 0, facts,
			[]string{"RLIMIT_MEMLOCK", "8388608 bytes soft", "unlimited hard", "CAP_IPC_LOCK"}},
		{"fds", unix.EMFILE, 0, facts, []string{"RLIMIT_NOFILE"}},
		{"old kernel", unix.EINVAL, SetupDeferTaskrun, facts, []string{"6.18.0", "0x2000"}},
	}
	for _, tc := range tests {
		got := explainSetup(tc.errno, tc.flags, tc.facts)
		for _, s := range tc.want {
			if !strings.Contains(got, s) {
				t.Errorf("%s: explainSetup(%v) = %q, lacks %q", tc.name, tc.errno, got, s)
			}
		}
	}
}

func TestProbeSupports(t *testing.T) {
	var p probe
	p[offProbeOpsLen] = byte(OpRead) + 1
	ne.PutUint16(p[probeHeaderSize+int(OpRead)*probeOpSize+offProbeOpFlags:], probeOpSupported)
	tests := []struct {
		op   Op
		want bool
	}{
		{OpRead, true},   // listed and flagged
		{OpNop, false},   // listed, flag clear
		{OpWrite, false}, // past ops_len
		{Op(255), false}, // far past ops_len
		{OpFsync, false}, // listed, flag clear
		{OpFallocate, false},
	}
	for _, tc := range tests {
		if got := p.supports(tc.op); got != tc.want {
			t.Errorf("supports(%v) = %v, want %v", tc.op, got, tc.want)
		}
	}
}
