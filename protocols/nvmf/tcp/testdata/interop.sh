#!/bin/sh
# Guest agent for the NVMe/TCP interop tests: the Linux kernel's nvme-tcp host and Debian's
# nvme-cli against the Sluice target on the host (10.0.2.2 in the guest).
#
# usage: interop.sh MODE TRADDR TRSVCID SUBNQN [CONNECT-OPTIONS...]
#   full     discover, connect, id-ctrl/id-ns/list/smart-log/error-log/get-feature, 64 MiB of a
#            known pattern written at 4 KiB, 64 KiB and 1 MiB and read back, flush, discard,
#            write zeroes, disconnect
#   restart  connect, write and read, print RESTART-NOW and wait for a line on stdin (the test
#            restarts the target), then write and read again through the reconnected host
#   kill     connect, print WRITING, write 48 MiB: the test kills the target meanwhile, and
#            the write must fail
#   hotplug  connect, print ADD-NOW and wait for a line (the test adds namespace 2), wait for
#            its block device and write and read it, print REMOVE-NOW and wait for a line (the
#            test deletes namespace 2's bdev), wait for the block device to go, read NSID 1
#
# Programs that busybox also provides are called by path (/bin/dd is coreutils' dd, copied
# from the host, for oflag=direct).
mode=$1 traddr=$2 trsvcid=$3 nqn=$4
shift 4
hostnqn=nqn.2014-08.org.nvmexpress:uuid:5b1c2c7e-5a3c-4b6e-9c5d-3f0a4e2b1d01
hostid=5b1c2c7e-5a3c-4b6e-9c5d-3f0a4e2b1d01
nvme=/bin/nvme
DD=/bin/dd

fail() { echo "INTEROP-FAIL $*"; exit 1; }

# find_dev waits for the namespace block device of $nqn and sets dev and ctrl.
find_dev() {
	i=0
	while [ $i -lt 100 ]; do
		for c in /sys/class/nvme/nvme*; do
			[ -e "$c/subsysnqn" ] || continue
			[ "$(cat $c/subsysnqn)" = "$nqn" ] || continue
			ctrl=/dev/$(basename $c)
			for d in /dev/nvme*n1; do
				[ -b "$d" ] && dev=$d && return 0
			done
		done
		sleep 0.1
		i=$((i + 1))
	done
	fail "no block device for $nqn"
}

connect() {
	$nvme connect -t tcp -a "$traddr" -s "$trsvcid" -n "$nqn" --hostnqn=$hostnqn --hostid=$hostid "$@" ||
		fail "nvme connect $*"
	find_dev
	echo "CONNECTED $ctrl $dev"
}

# pattern makes /tmp/pat: $1 MiB of random bytes.
pattern() { $DD if=/dev/urandom of=/tmp/pat bs=1M count=$1 status=none || fail "pattern"; }

sum() { sha256sum | cut -d' ' -f1; }

case $mode in
full)
	$nvme discover -t tcp -a "$traddr" -s "$trsvcid" --hostnqn=$hostnqn --hostid=$hostid > /tmp/disc ||
		fail "nvme discover"
	cat /tmp/disc
	grep -q "subnqn: *$nqn" /tmp/disc || fail "discovery log lacks $nqn"
	connect "$@"
	$nvme list || fail "nvme list"
	$nvme id-ctrl $ctrl || fail "id-ctrl"
	$nvme id-ns $dev || fail "id-ns"
	$nvme smart-log $ctrl || fail "smart-log"
	$nvme error-log $ctrl || fail "error-log"
	$nvme get-feature $ctrl -f 7 || fail "get-feature 7"
	$nvme get-feature $ctrl -f 0xf || fail "get-feature 0xf"

	pattern 64
	# 8 MiB at 4 KiB, 24 MiB at 64 KiB, 32 MiB at 1 MiB: 64 MiB of the pattern in place.
	$DD if=/tmp/pat of=$dev bs=4k count=2048 oflag=direct conv=notrunc status=none || fail "write 4k"
	$DD if=/tmp/pat of=$dev bs=64k skip=128 seek=128 count=384 oflag=direct conv=notrunc status=none || fail "write 64k"
	$DD if=/tmp/pat of=$dev bs=1M skip=32 seek=32 count=32 oflag=direct conv=notrunc status=none || fail "write 1M"
	want=$(sum < /tmp/pat)
	got=$($DD if=$dev bs=1M count=64 iflag=direct status=none | sum)
	echo "SUM-1M want=$want got=$got"
	[ "$want" = "$got" ] || fail "64 MiB read back at 1 MiB differs"
	want=$($DD if=/tmp/pat bs=4k count=2048 status=none | sum)
	got=$($DD if=$dev bs=4k count=2048 iflag=direct status=none | sum)
	[ "$want" = "$got" ] || fail "8 MiB read back at 4 KiB differs"
	echo "DATA-OK"

	$nvme flush $ctrl -n 1 || fail "flush"
	echo "FLUSH-OK"
	zero=$($DD if=/dev/zero bs=1M count=1 status=none | sum)
	/bin/blkdiscard -o 0 -l 1048576 $dev || fail "blkdiscard"
	[ "$($DD if=$dev bs=1M count=1 iflag=direct status=none | sum)" = "$zero" ] || fail "discarded MiB not zero"
	echo "DISCARD-OK"
	/bin/blkdiscard -z -o 1048576 -l 1048576 $dev || fail "blkdiscard -z"
	[ "$($DD if=$dev bs=1M skip=1 count=1 iflag=direct status=none | sum)" = "$zero" ] || fail "zeroed MiB not zero"
	echo "WRITE-ZEROES-OK"
	$nvme smart-log $ctrl | grep -i "data_units_written\|Data Units Written" || fail "smart-log after I/O"

	$nvme disconnect -n "$nqn" || fail "disconnect"
	i=0
	while [ -b "$dev" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	[ -b "$dev" ] && fail "$dev still there after disconnect"
	echo "DISCONNECT-OK"
	;;
restart)
	connect "$@"
	pattern 8
	$DD if=/tmp/pat of=$dev bs=64k oflag=direct conv=notrunc status=none || fail "write before restart"
	echo "RESTART-NOW"
	read line
	echo "RESTARTED $line"
	# The host reconnects on its own (reconnect_delay); I/O waits for it.
	want=$(sum < /tmp/pat)
	$DD if=/tmp/pat of=$dev bs=64k oflag=direct conv=notrunc status=none || fail "write after restart"
	got=$($DD if=$dev bs=64k count=128 iflag=direct status=none | sum)
	[ "$want" = "$got" ] || fail "read back after restart differs"
	echo "RECONNECT-OK"
	$nvme disconnect -n "$nqn" || fail "disconnect"
	;;
kill)
	connect "$@"
	echo "WRITING"
	$DD if=/dev/zero of=$dev bs=1M count=48 oflag=direct conv=notrunc status=none
	echo "DD-EXIT $?"
	$nvme disconnect -n "$nqn"
	;;
hotplug)
	connect "$@"
	echo "ADD-NOW"
	read line
	# The kernel rescans on the Namespace Attribute Changed event: no nvme ns-rescan here.
	ns2=${dev%n1}n2
	i=0
	while [ ! -b "$ns2" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	[ -b "$ns2" ] || fail "no $ns2 after the namespace was added"
	echo "NS2-APPEARED $ns2"
	pattern 4
	$DD if=/tmp/pat of=$ns2 bs=64k oflag=direct conv=notrunc status=none || fail "write $ns2"
	[ "$(sum < /tmp/pat)" = "$($DD if=$ns2 bs=64k count=64 iflag=direct status=none | sum)" ] ||
		fail "read back of $ns2 differs"
	echo "NS2-DATA-OK"
	echo "REMOVE-NOW"
	read line
	i=0
	while [ -b "$ns2" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	[ -b "$ns2" ] && fail "$ns2 still there after its bdev was deleted"
	echo "NS2-GONE"
	$DD if=$dev of=/dev/null bs=64k count=16 iflag=direct status=none || fail "read $dev after the removal"
	echo "NS1-OK"
	$nvme disconnect -n "$nqn" || fail "disconnect"
	;;
*)
	fail "unknown mode $mode"
	;;
esac
echo "INTEROP-DONE"
