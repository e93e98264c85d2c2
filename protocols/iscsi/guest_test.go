package iscsi

import (
	"crypto/md5"
	"encoding/hex"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/internal/guest"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/bdev/bdevtest"
)

// guestPatternMiB is what the guest writes and reads back: tens of MiB, a
// few seconds through TCG's user-mode network (ARCHITECTURE.md).
const guestPatternMiB = 32

// guestAgent is the guest's side: open-iscsi's iscsid and iscsiadm
// discover the target through 10.0.2.2 (the host's 127.0.0.1), log in
// with mutual CHAP, write a random pattern through /dev/sda with direct
// I/O, read it back and compare, then log out. SendTargets answers with the
// address the target sees (127.0.0.1, the guest's own loopback), so the
// node record for the host's address is made by hand.
const guestAgent = `set -e
port=$1 iqn=$2 user=$3 secret=$4 muser=$5 msecret=$6 mib=$7
mkdir -p /etc/iscsi /var/lib/iscsi /run/lock/iscsi
echo "InitiatorName=iqn.2024-01.io.sluice:guest-initiator" >/etc/iscsi/initiatorname.iscsi
/bin/iscsid
/bin/iscsiadm -m discovery -t sendtargets -p 10.0.2.2:$port
/bin/iscsiadm -m node -o new -T $iqn -p 10.0.2.2:$port
set_node() { /bin/iscsiadm -m node -T $iqn -p 10.0.2.2:$port -o update -n $1 -v $2; }
set_node node.session.auth.authmethod CHAP
set_node node.session.auth.username $user
set_node node.session.auth.password $secret
set_node node.session.auth.username_in $muser
set_node node.session.auth.password_in $msecret
/bin/iscsiadm -m node -T $iqn -p 10.0.2.2:$port --login
for i in $(seq 100); do [ -e /sys/block/sda ] && break; usleep 100000; done
echo "ISCSI-DISK vendor=$(cat /sys/block/sda/device/vendor) model=$(cat /sys/block/sda/device/model) size=$(cat /sys/block/sda/size)"
/bin/iscsiadm -m session
dd if=/dev/urandom of=/tmp/pattern bs=1M count=$mib 2>/dev/null
echo "PATTERN-MD5 $(md5sum </tmp/pattern)"
dd if=/tmp/pattern of=/dev/sda bs=1M oflag=direct 2>/dev/null
echo 3 >/proc/sys/vm/drop_caches
dd if=/dev/sda of=/tmp/back bs=1M count=$mib iflag=direct 2>/dev/null
if cmp /tmp/pattern /tmp/back; then echo "ISCSI-VERIFY ok"; else echo "ISCSI-VERIFY differs"; fi
/bin/iscsiadm -m node -T $iqn -p 10.0.2.2:$port --logout
`

// TestGuestOpenISCSI: the Linux kernel's iscsi_tcp, driven by open-iscsi
// in a QEMU guest, discovers the target, logs in with mutual CHAP, writes
// and verifies a pattern through /dev/sda, and logs out; the host then
// finds the same bytes in the malloc bdev.
func TestGuestOpenISCSI(t *testing.T) {
	env := guest.Require(t)
	const user, secret, muser, msecret = "guest-initiator", "initiator-secret-1", "sluice-target", "target-secret-22"
	tt := newTarget(t, targetOptions{
		chap:    CHAP{Require: true, Mutual: true, Group: 1},
		secrets: []CHAPSecret{{User: user, Secret: secret, MutualUser: muser, MutualSecret: msecret}},
	})
	res, err := env.Run(t.Context(), guest.Options{
		AgentScript: guestAgent,
		Args: []string{strconv.Itoa(int(tt.port)), tt.iqn, user, secret, muser, msecret,
			strconv.Itoa(guestPatternMiB)},
		Packages: []string{"open-iscsi", "libopeniscsiusr", "libisns0"},
		Modules:  []string{"iscsi_tcp", "sd_mod"},
		Console:  guest.ConsoleLog(t),
		Timeout:  3 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("boot %v, run %v, agent exit %d", res.BootTime.Round(time.Millisecond), res.Elapsed.Round(time.Millisecond), res.ExitCode)
	if res.ExitCode != 0 {
		t.Errorf("agent exit %d, want 0", res.ExitCode)
	}
	for _, want := range []string{
		"127.0.0.1:" + strconv.Itoa(int(tt.port)) + ",1 " + tt.iqn, // SendTargets
		"ISCSI-DISK vendor=SLUICE",
		"tcp: [", // iscsiadm -m session
		"ISCSI-VERIFY ok",
		"Logout of [sid:",
	} {
		if !regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(res.Output) {
			t.Errorf("console lacks %q", want)
		}
	}
	m := regexp.MustCompile(`PATTERN-MD5 ([0-9a-f]{32})`).FindStringSubmatch(res.Output)
	if m == nil {
		t.Fatal("guest printed no pattern checksum")
	}
	// The bytes are in the bdev itself, not only in the guest's view.
	h := (&bdevtest.Stack{Set: tt.set, Reg: tt.reg}).Open(t, "Malloc0")
	sum := md5.New()
	const chunk = bdevtest.BufSize / 512
	for lba := uint64(0); lba < guestPatternMiB<<20/512; lba += chunk {
		if st, detail := h.Do(t, 0, bdev.IORead, lba, chunk); st != bdev.StatusSuccess {
			t.Fatalf("read LBA %d: %v %s", lba, st, detail)
		}
		sum.Write(h.Buf(0)[:chunk*512])
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != m[1] {
		t.Errorf("bdev holds md5 %s, the guest wrote %s", got, m[1])
	}
}
