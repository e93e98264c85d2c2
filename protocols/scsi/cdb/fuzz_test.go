package cdb

import "testing"

// FuzzCDB checks that Parse never panics or reads past the CDB, that rejections carry
// a field pointer inside the CDB, and that the parameter-list parsers survive any data.
// Seeds: testdata/fuzz/FuzzCDB.
func FuzzCDB(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("Parse error %T", err)
			}
			if at, _, inCDB, ok := e.FieldPointer(); ok && (!inCDB || at >= max(len(b), 1)) {
				t.Fatalf("field pointer byte %d outside a %d-byte CDB", at, len(b))
			}
			_ = e.Error()
		} else {
			if c.Size == 0 || c.Size > len(b) || c.Control != b[c.Size-1] {
				t.Fatalf("accepted CDB size %d of %d bytes", c.Size, len(b))
			}
			if (c.Opcode == OpRead6 || c.Opcode == OpWrite6) && c.Blocks == 0 {
				t.Fatal("6-byte transfer length 0 not read as 256")
			}
			_ = c.DataSize(4096)
			_ = c.CheckRange(1 << 40)
		}
		if l, err := ParseUnmapParameters(b); err == nil {
			_ = l.Check(1<<40, 16, 1<<20)
		}
		for sa := range ServiceAction(9) {
			if r, err := ParsePROutParameters(sa, b); err == nil {
				list, off := r.TransportIDs, 0
				for len(list) > 0 {
					tid, rest, err := NextTransportID(list, off)
					if err != nil {
						break
					}
					_, _, _ = tid.ISCSIName()
					off += len(tid)
					list = rest
				}
			}
		}
	})
}
