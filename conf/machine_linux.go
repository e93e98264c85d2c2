package conf

import (
	"syscall"
	"unsafe"
)

// affinityCPUs returns the CPUs this process may run on, ascending, or nil
// if the kernel will not say. The mask holds CoresMax CPUs, as the
// reactors' own sched_setaffinity does; a kernel with more possible CPUs
// answers EINVAL and HostMachine falls back.
func affinityCPUs() []int {
	var mask [CoresMax / 64]uint64
	n, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0,
		uintptr(len(mask)*8), uintptr(unsafe.Pointer(&mask[0])))
	if errno != 0 {
		return nil
	}
	var cpus []int
	for id := 0; id < int(n)*8 && id < CoresMax; id++ {
		if mask[id/64]&(1<<(id%64)) != 0 {
			cpus = append(cpus, id)
		}
	}
	return cpus
}
