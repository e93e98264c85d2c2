//go:build !linux

package conf

// affinityCPUs: only Linux tells; HostMachine falls back to runtime.NumCPU.
func affinityCPUs() []int { return nil }
