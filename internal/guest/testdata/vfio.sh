#!/bin/sh
# Guest agent: move QEMU's emulated NVMe controller (1b36:0010) from the
# nvme driver to vfio-pci, as a user-space NVMe driver's setup does, and
# check that its IOMMU group's VFIO device node appears.
set -e
dev=
for d in /sys/bus/pci/devices/*; do
	if [ "$(cat $d/vendor)" = 0x1b36 ] && [ "$(cat $d/device)" = 0x0010 ]; then dev=$d; fi
done
[ -n "$dev" ] || { echo "no QEMU NVMe controller"; exit 3; }
bdf=${dev##*/}
driver=$(readlink $dev/driver)
echo "VFIO-BEFORE $bdf driver=${driver##*/}"
echo $bdf >$dev/driver/unbind
echo vfio-pci >$dev/driver_override
echo $bdf >/sys/bus/pci/drivers_probe
driver=$(readlink $dev/driver)
group=$(readlink $dev/iommu_group)
group=${group##*/}
echo "VFIO-AFTER $bdf driver=${driver##*/} group=$group"
[ -c /dev/vfio/vfio ] && [ -c /dev/vfio/$group ]
echo "VFIO-NODES /dev/vfio/vfio /dev/vfio/$group"
