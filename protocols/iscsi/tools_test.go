package iscsi

import (
	"testing"
	"time"
)

// TestLibiscsiTools: libiscsi's iscsi-ls (discovery, SendTargets, then a
// normal login with REPORT LUNS), iscsi-inq and iscsi-readcapacity16 work
// against the target as against any other.
func TestLibiscsiTools(t *testing.T) {
	tt := newTarget(t, targetOptions{})
	out, err := runTool(t, waitTimeout, "iscsi-ls", "-s", "iscsi://127.0.0.1:"+itoa(tt.port))
	if err != nil {
		t.Fatalf("iscsi-ls: %v\n%s", err, out)
	}
	mustContain(t, out, "Target:"+tt.iqn, "Portal:127.0.0.1:"+itoa(tt.port)+",1", "Lun:0", "Type:DIRECT_ACCESS")

	out, err = runTool(t, waitTimeout, "iscsi-inq", tt.url(0, "", ""))
	if err != nil {
		t.Fatalf("iscsi-inq: %v\n%s", err, out)
	}
	mustContain(t, out, "Peripheral Device Type:", "Vendor:SLUICE", "Product:Sluice disk")

	out, err = runTool(t, waitTimeout, "iscsi-inq", "--evpd=1", "--pagecode=131", tt.url(0, "", ""))
	if err != nil {
		t.Fatalf("iscsi-inq -e 1 -c 0x83: %v\n%s", err, out)
	}
	mustContain(t, out, "NAA", tt.iqn)

	out, err = runTool(t, waitTimeout, "iscsi-readcapacity16", tt.url(0, "", ""))
	if err != nil {
		t.Fatalf("iscsi-readcapacity16: %v\n%s", err, out)
	}
	mustContain(t, out, "LOGICAL BLOCK LENGTH IN BYTES:512", "RETURNED LOGICAL BLOCK ADDRESS:131071", "Total size:67108864")
	_ = time.Second
}

func itoa(v uint16) string {
	b := []byte{}
	if v == 0 {
		return "0"
	}
	for v > 0 {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
	}
	return string(b)
}
