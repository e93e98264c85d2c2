package pdu

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// Limits the table rows name.
var limitPresets = map[string]Limits{
	"pre-ic":  {},
	"plain":   {ICDone: true, CapsuleDataMax: 8192, DataMax: 65536},
	"digests": {ICDone: true, HeaderDigest: true, DataDigest: true, CapsuleDataMax: 8192, DataMax: 65536},
	"hdgst":   {ICDone: true, HeaderDigest: true, CapsuleDataMax: 8192, DataMax: 65536},
	"pda3":    {ICDone: true, HeaderDigest: true, PDA: 3, CapsuleDataMax: 8192, DataMax: 65536},
}

// Each malformed class, the field it blames and the termination request it implies. hdr is the
// 8-byte common header in hex: type, flags, HLEN, PDO, PLEN (little endian).
func TestCheck(t *testing.T) {
	tests := []struct {
		name, role, lim, hdr, blame string // blame "": valid
		fes                         FES
	}{
		// Controller receives.
		{"icreq", "c", "pre-ic", "00 00 80 00 80000000", "", 0},
		{"icreq with hdgstf", "c", "pre-ic", "00 01 80 00 80000000", "flags", FESInvalidHeaderField},
		{"icreq hlen", "c", "pre-ic", "00 00 7f 00 80000000", "hlen", FESInvalidHeaderField},
		{"icreq pdo", "c", "pre-ic", "00 00 80 04 80000000", "pdo", FESInvalidHeaderField},
		{"icreq plen", "c", "pre-ic", "00 00 80 00 84000000", "plen", FESInvalidHeaderField},
		{"capsule before ic", "c", "pre-ic", "04 00 48 00 48000000", "pdu-type", FESPDUSequenceError},
		{"h2c data before ic", "c", "pre-ic", "06 04 18 18 20000000", "pdu-type", FESPDUSequenceError},
		{"term req before ic", "c", "pre-ic", "02 00 18 00 20000000", "", 0},
		{"second icreq", "c", "plain", "00 00 80 00 80000000", "pdu-type", FESPDUSequenceError},
		{"capsule", "c", "plain", "04 00 48 00 48000000", "", 0},
		{"capsule with data", "c", "plain", "04 00 48 48 58000000", "", 0},
		{"capsule pdo = hlen without data", "c", "plain", "04 00 48 48 48000000", "", 0},
		{"capsule hdgst", "c", "hdgst", "04 01 48 00 4c000000", "", 0},
		{"capsule digests, no data", "c", "digests", "04 01 48 00 4c000000", "", 0},
		{"capsule digests, data", "c", "digests", "04 03 48 4c 60000000", "", 0},
		{"capsule data at limit", "c", "digests", "04 03 48 4c 50200000", "", 0},
		{"capsule data over limit", "c", "digests", "04 03 48 4c 51200000", "plen", FESDataLimitExceeded},
		{"capsule data, no ddgstf", "c", "digests", "04 01 48 4c 60000000", "flags", FESInvalidHeaderField},
		{"capsule ddgstf, no data", "c", "digests", "04 03 48 00 4c000000", "flags", FESInvalidHeaderField},
		{"capsule no hdgstf", "c", "digests", "04 02 48 4c 60000000", "flags", FESInvalidHeaderField},
		{"capsule hdgstf not negotiated", "c", "plain", "04 01 48 00 4c000000", "flags", FESInvalidHeaderField},
		{"capsule last_pdu", "c", "plain", "04 04 48 00 48000000", "flags", FESInvalidHeaderField},
		{"capsule reserved flag", "c", "plain", "04 80 48 00 48000000", "flags", FESInvalidHeaderField},
		{"capsule hlen too short", "c", "plain", "04 00 40 00 48000000", "hlen", FESInvalidHeaderField},
		{"capsule pdo below header", "c", "digests", "04 03 48 48 60000000", "pdo", FESInvalidHeaderField},
		{"capsule pdo unaligned", "c", "plain", "04 00 48 4a 58000000", "pdo", FESInvalidHeaderField},
		{"capsule pdo aligned to 16", "c", "pda3", "04 01 48 50 60000000", "", 0},
		{"capsule pdo unaligned to 16", "c", "pda3", "04 01 48 4c 60000000", "pdo", FESInvalidHeaderField},
		{"capsule pdo past plen", "c", "plain", "04 00 48 60 50000000", "pdo", FESInvalidHeaderField},
		{"capsule pdo without data", "c", "plain", "04 00 48 4c 48000000", "pdo", FESInvalidHeaderField},
		{"capsule plen under hlen", "c", "plain", "04 00 48 00 10000000", "plen", FESInvalidHeaderField},
		{"capsule plen under digest", "c", "hdgst", "04 01 48 00 48000000", "plen", FESInvalidHeaderField},
		{"capsule no room for data", "c", "digests", "04 03 48 4c 50000000", "plen", FESInvalidHeaderField},
		{"capsule plen over limit", "c", "plain", "04 00 48 48 00100100", "plen", FESDataLimitExceeded},
		{"h2c data", "c", "plain", "06 04 18 18 20000000", "", 0},
		{"h2c data digests", "c", "digests", "06 07 18 1c 24000000", "", 0},
		{"h2c data without data", "c", "plain", "06 04 18 00 18000000", "plen", FESInvalidHeaderField},
		{"h2c data success flag", "c", "plain", "06 0c 18 18 20000000", "flags", FESInvalidHeaderField},
		{"h2c data at MAXH2CDATA", "c", "plain", "06 04 18 18 18000100", "", 0},
		{"h2c data over MAXH2CDATA", "c", "plain", "06 04 18 18 19000100", "plen", FESDataLimitExceeded},
		{"h2c term req", "c", "plain", "02 00 18 00 98000000", "", 0},
		{"h2c term req no data", "c", "plain", "02 00 18 00 18000000", "", 0},
		{"h2c term req too long", "c", "plain", "02 00 18 00 99000000", "plen", FESNone},
		{"h2c term req flags", "c", "digests", "02 01 18 00 20000000", "flags", FESNone},
		{"h2c term req hlen", "c", "plain", "02 00 08 00 20000000", "hlen", FESNone},
		{"controller-to-host type", "c", "plain", "05 00 18 00 18000000", "pdu-type", FESInvalidHeaderField},
		{"c2h term req to controller", "c", "plain", "03 00 18 00 18000000", "pdu-type", FESInvalidHeaderField},
		{"undefined type 8", "c", "plain", "08 00 18 00 18000000", "pdu-type", FESInvalidHeaderField},
		{"undefined type ff", "c", "plain", "ff 00 18 00 18000000", "pdu-type", FESInvalidHeaderField},

		// Host receives.
		{"icresp", "h", "pre-ic", "01 00 80 00 80000000", "", 0},
		{"resp before icresp", "h", "pre-ic", "05 00 18 00 18000000", "pdu-type", FESPDUSequenceError},
		{"resp", "h", "plain", "05 00 18 00 18000000", "", 0},
		{"resp hdgst", "h", "hdgst", "05 01 18 00 1c000000", "", 0},
		{"resp with data", "h", "plain", "05 00 18 00 1c000000", "plen", FESInvalidHeaderField},
		{"resp pdo", "h", "plain", "05 00 18 18 18000000", "pdo", FESInvalidHeaderField},
		{"resp ddgstf", "h", "digests", "05 03 18 00 1c000000", "flags", FESInvalidHeaderField},
		{"r2t", "h", "digests", "09 01 18 00 1c000000", "", 0},
		{"r2t plen", "h", "digests", "09 01 18 00 18000000", "plen", FESInvalidHeaderField},
		{"c2h data last success", "h", "plain", "07 0c 18 18 20000000", "", 0},
		{"c2h data success without last", "h", "plain", "07 08 18 18 20000000", "flags", FESInvalidHeaderField},
		{"c2h data digests aligned to 16", "h", "pda3", "07 05 18 20 30000000", "", 0},
		{"c2h data pdo unaligned", "h", "pda3", "07 05 18 1c 30000000", "pdo", FESInvalidHeaderField},
		{"c2h data over limit", "h", "plain", "07 04 18 18 19000100", "plen", FESDataLimitExceeded},
		{"second icresp", "h", "plain", "01 00 80 00 80000000", "pdu-type", FESPDUSequenceError},
		{"capsule to host", "h", "plain", "04 00 48 00 48000000", "pdu-type", FESInvalidHeaderField},
		{"c2h term req", "h", "plain", "03 00 18 00 20000000", "", 0},
	}
	for _, tc := range tests {
		role := Controller
		if tc.role == "h" {
			role = Host
		}
		b := unhex(t, tc.hdr)
		err := HeaderOf(b).Check(role, limitPresets[tc.lim])
		got, fes := "", FES(0)
		var fe *FieldError
		if errors.As(err, &fe) {
			got, fes = fe.Field, fe.FES()
		}
		if got != tc.blame || fes != tc.fes || (err == nil) != (tc.blame == "") {
			t.Errorf("%s: %v Check(%s) under %s = %v; want blame %q %v", tc.name, role, tc.hdr, tc.lim, err, tc.blame, tc.fes)
			continue
		}
		if fe == nil {
			continue
		}
		// The FEI is the field's offset for an invalid field, else reserved; every field
		// Check blames lies in the common header.
		wantFEI := uint32(0)
		if fes == FESInvalidHeaderField {
			wantFEI = fe.Offset
		}
		if fe.FEI() != wantFEI || fe.Offset >= CommonHeaderSize {
			t.Errorf("%s: FEI %d offset %d", tc.name, fe.FEI(), fe.Offset)
		}
	}
}

// CheckPSH: the checks that need the whole header.
func TestCheckPSH(t *testing.T) {
	icreq := func(mod func(b []byte)) []byte {
		b := make([]byte, ICReqSize)
		EncodeICReq(b, ICReqFields{HeaderDigest: true})
		mod(b)
		return b
	}
	icresp := func(mod func(b []byte)) []byte {
		b := make([]byte, ICRespSize)
		EncodeICResp(b, ICRespFields{MAXH2CData: 8192})
		mod(b)
		return b
	}
	plain := Limits{ICDone: true, DataMax: 65536}
	data := func(t Type, mod func(b []byte)) []byte {
		b := make([]byte, 64)
		f := DataFields{CCCID: 1, TTAG: 2, DataLen: 8, Last: true}
		if t == TypeH2CData {
			Sender{}.EncodeH2CData(b, f)
		} else {
			Sender{}.EncodeC2HData(b, f)
		}
		mod(b)
		return b[:DataHeaderSize]
	}
	r2t := func(mod func(b []byte)) []byte {
		b := make([]byte, R2TSize)
		Sender{}.EncodeR2T(b, R2TFields{CCCID: 1, TTAG: 1, R2TLen: 4096})
		mod(b)
		return b
	}
	none := func([]byte) {}
	tests := []struct {
		name   string
		hdr    []byte
		lim    Limits
		blame  string
		offset uint32
		fes    FES
	}{
		{"icreq", icreq(none), Limits{}, "", 0, 0},
		{"icreq pfv 1", icreq(func(b []byte) { b[8] = 1 }), Limits{}, "pfv", 8, FESUnsupportedParameter},
		{"icreq hpda 32", icreq(func(b []byte) { b[10] = 32 }), Limits{}, "pda", 10, FESInvalidHeaderField},
		{"icreq hpda 31", icreq(func(b []byte) { b[10] = 31 }), Limits{}, "", 0, 0},
		{"icreq dgst bit 2", icreq(func(b []byte) { b[11] = 4 }), Limits{}, "dgst", 11, FESInvalidHeaderField},
		{"icreq reserved", icreq(func(b []byte) { b[100] = 1 }), Limits{}, "reserved", 100, FESInvalidHeaderField},
		{"icresp", icresp(none), Limits{}, "", 0, 0},
		{"icresp maxh2cdata 4095", icresp(func(b []byte) { putLE32(b, 12, 4095) }), Limits{}, "maxh2cdata", 12, FESInvalidHeaderField},
		{"icresp maxh2cdata 4098", icresp(func(b []byte) { putLE32(b, 12, 4098) }), Limits{}, "maxh2cdata", 12, FESInvalidHeaderField},
		{"icresp reserved", icresp(func(b []byte) { b[127] = 1 }), Limits{}, "reserved", 127, FESInvalidHeaderField},
		{"h2c data", data(TypeH2CData, none), plain, "", 0, 0},
		{"h2c datal", data(TypeH2CData, func(b []byte) { putLE32(b, 16, 9) }), plain, "datal", 16, FESInvalidHeaderField},
		{"h2c reserved", data(TypeH2CData, func(b []byte) { b[23] = 1 }), plain, "reserved", 23, FESInvalidHeaderField},
		{"c2h data", data(TypeC2HData, none), plain, "", 0, 0},
		{"c2h ttag", data(TypeC2HData, func(b []byte) { b[10] = 1 }), plain, "reserved", 10, FESInvalidHeaderField},
		{"r2t", r2t(none), plain, "", 0, 0},
		{"r2t r2tl 0", r2t(func(b []byte) { putLE32(b, 16, 0) }), plain, "r2tl", 16, FESInvalidHeaderField},
		{"r2t reserved", r2t(func(b []byte) { b[20] = 1 }), plain, "reserved", 20, FESInvalidHeaderField},
	}
	for _, tc := range tests {
		err := CheckPSH(tc.hdr, tc.lim)
		var fe *FieldError
		if errors.As(err, &fe) != (tc.blame != "") {
			t.Errorf("%s: CheckPSH = %v, want blame %q", tc.name, err, tc.blame)
			continue
		}
		if fe != nil && (fe.Field != tc.blame || fe.Offset != tc.offset || fe.FES() != tc.fes || fe.FEI() != tc.offset) {
			t.Errorf("%s: CheckPSH = %v (offset %d, FEI %d), want %s at %d, %v", tc.name, err, fe.Offset, fe.FEI(), tc.blame, tc.offset, tc.fes)
		}
	}
}

func TestLimitsValidate(t *testing.T) {
	for _, tc := range []struct {
		role Role
		lim  Limits
		ok   bool
	}{
		{Controller, Limits{}, true},
		{Controller, Limits{ICDone: true, DataMax: 4096}, true},
		{Controller, Limits{ICDone: true, DataMax: 4092}, false},
		{Controller, Limits{ICDone: true, DataMax: 4098}, false},
		{Controller, Limits{PDA: 32}, false},
		{Host, Limits{ICDone: true, DataMax: 1}, true},
		{0, Limits{}, false},
	} {
		if err := tc.lim.Validate(tc.role); (err == nil) != tc.ok {
			t.Errorf("%v %+v: Validate = %v", tc.role, tc.lim, err)
		}
	}
}

func TestNames(t *testing.T) {
	for i, n := range typeNames {
		if n != "" && Type(i).String() != n {
			t.Errorf("type %d", i)
		}
	}
	if Type(8).String() != "pdu-type-0x08" || FES(9).String() != "fes-0x9" || Role(3).String() != "role-3" ||
		Kind(9).String() != "kind-9" || Controller.String() != "controller" || Host.String() != "host" {
		t.Error("names of undefined values")
	}
	for i, n := range fesNames {
		if FES(i).String() != n {
			t.Errorf("fes %d", i)
		}
	}
	if Controller.TermReqType() != TypeC2HTermReq || Host.TermReqType() != TypeH2CTermReq {
		t.Error("TermReqType")
	}
	fe := NewFieldError(FESDataOutOfRange, "datao", 12, 4096, "0")
	if fe.FES() != FESDataOutOfRange || fe.FEI() != 0 || !strings.Contains(fe.Error(), "datao (byte 12) is 0x1000, want 0: data-out-of-range") {
		t.Errorf("NewFieldError: %v", fe)
	}
}
