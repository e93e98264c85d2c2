#!/bin/sh
# Guest agent: an in-guest LIO iSCSI target (configfs, iblock on null_blk)
# on 127.0.0.1:3260, and open-iscsi's iscsid and iscsiadm discovering it,
# logging in (the kernel's iscsi_tcp then shows the LUN as /dev/sda) and out.
set -e
iqn=iqn.2024-01.io.sluice:guest-target
cfg=/sys/kernel/config/target
mkdir -p $cfg/core/iblock_0/disk0
echo udev_path=/dev/nullb0 >$cfg/core/iblock_0/disk0/control
echo 1 >$cfg/core/iblock_0/disk0/enable
tpg=$cfg/iscsi/$iqn/tpgt_1
mkdir -p $tpg/lun/lun_0
ln -s $cfg/core/iblock_0/disk0 $tpg/lun/lun_0/disk0
mkdir $tpg/np/127.0.0.1:3260
echo 0 >$tpg/attrib/authentication
echo 1 >$tpg/attrib/generate_node_acls
echo 0 >$tpg/attrib/demo_mode_write_protect
echo 1 >$tpg/enable

iscsid
iscsiadm -m discovery -t sendtargets -p 127.0.0.1:3260
iscsiadm -m node -T $iqn -p 127.0.0.1:3260 --login
# No udev: the disk shows up when the SCSI scan the login started finishes.
for i in $(seq 50); do [ -e /sys/block/sda ] && break; usleep 100000; done
echo "ISCSI-DISK vendor=$(cat /sys/block/sda/device/vendor) model=$(cat /sys/block/sda/device/model)"
dd if=/dev/sda of=/dev/null bs=4k count=16 2>/dev/null && echo "ISCSI-READ ok"
iscsiadm -m session
iscsiadm -m node -T $iqn -p 127.0.0.1:3260 --logout
