#!/bin/sh
# /init (PID 1) of the sluice test guest, run by busybox sh; embedded into the
# base initramfs by prepare.go. The per-run archive that Run lays over the base
# gives it /guest/nonce, /guest/modules (one name a line), /guest/args.sh
# (a `set --` line with the agent's argv, quoted by Run) and /agent.
#
# It prints two markers that Run watches for, both carrying the run's nonce so
# that nothing an agent prints can be taken for them:
#   SLUICE-GUEST-READY <nonce> <uptime>s   just before the agent starts
#   SLUICE-GUEST-EXIT <nonce> <status>     after the agent ends; then power off
export PATH=/bin HOME=/root TERM=dumb

mount -t devtmpfs dev /dev
# The console is the agent's stdin too: Guest.Send writes lines to it.
exec </dev/console >/dev/console 2>&1
mkdir -p /dev/pts /dev/shm /dev/hugepages
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devpts devpts /dev/pts
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run && mkdir -p /run/lock
mount -t tmpfs shm /dev/shm
mount -t hugetlbfs huge /dev/hugepages
modprobe configfs 2>/dev/null
mount -t configfs configfs /sys/kernel/config
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
hostname guest

nonce=$(cat /guest/nonce 2>/dev/null)

# Coldplug: there is no udev, so load the drivers of the devices present.
# virtio devices appear only once virtio_pci is loaded, hence pci first.
for bus in pci virtio; do
	for alias in /sys/bus/$bus/devices/*/modalias; do
		[ -e "$alias" ] && modprobe -q "$(cat "$alias")" 2>/dev/null
	done
done
# busybox modprobe ignores softdeps: Run lists vfio_iommu_type1 explicitly.
if [ -e /guest/modules ]; then
	while read -r mod; do
		[ -n "$mod" ] && { modprobe "$mod" || echo "init: modprobe $mod failed"; }
	done </guest/modules
fi

# QEMU user networking: the guest is 10.0.2.15, 10.0.2.2 is the host's 127.0.0.1.
ip link set lo up
if ip link set eth0 up 2>/dev/null; then
	ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
fi

echo "SLUICE-GUEST-READY $nonce $(cut -d' ' -f1 /proc/uptime)s"
rc=0
cd /root
if [ -e /agent ]; then
	set --
	[ -e /guest/args.sh ] && . /guest/args.sh
	/agent "$@" || rc=$?
fi
echo "SLUICE-GUEST-EXIT $nonce $rc"
sync
poweroff -f
echo o >/proc/sysrq-trigger
