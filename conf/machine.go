package conf

import "runtime"

// HostMachine describes the machine this process runs on: the CPUs its
// affinity mask allows (sched_getaffinity on Linux). Where that cannot be
// read it assumes CPUs 0..runtime.NumCPU()-1.
func HostMachine() Machine {
	if cpus := affinityCPUs(); len(cpus) > 0 {
		return Machine{CPUs: cpus}
	}
	cpus := make([]int, runtime.NumCPU())
	for i := range cpus {
		cpus[i] = i
	}
	return Machine{CPUs: cpus}
}
