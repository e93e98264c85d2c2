#!/bin/sh
# nvmf-target.sh: the NVMe/TCP target's figures, as medians of several runs.
#
# Runs BenchmarkTarget (protocols/nvmf/tcp/target_bench_test.go): the target busy-polling on
# one core with a null namespace, `sluice perf nvmf`'s engine (our NVMe/TCP host) on the
# other, over loopback: 4 KiB randread and randwrite at queue depths 1, 32 and 128, and
# 128 KiB sequential read and write at depth 32. Each configuration runs SECONDS seconds,
# RUNS times; the medians of IOPS, MiB/s and latency are printed, with every run's IOPS.
#
# usage: perf/nvmf-target.sh [RUNS [SECONDS]]     (defaults 5 and 5)
#
# The machine should be otherwise idle: both cores are busy-polled. README.md has these
# figures beside SPDK's nvmf_tgt and spdk_nvme_perf run on the same machine.
set -eu
runs=${1:-5}
seconds=${2:-5}
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
SLUICE_BENCH_SECONDS=$seconds go test ./protocols/nvmf/tcp -run '^$' -bench '^BenchmarkTarget$' \
	-benchtime 1x -count "$runs" | tee "$out" >&2
awk '
/^BenchmarkTarget\// {
	name = $1; sub(/^BenchmarkTarget\//, "", name); sub(/-[0-9]+$/, "", name)
	for (i = 3; i < NF; i += 2) { v[name, $(i+1), ++n[name, $(i+1)]] = $i }
	if (!(name in seen)) { seen[name] = 1; order[++k] = name }
}
function median(name, unit,   m, i, j, t, a) {
	m = n[name, unit]
	for (i = 1; i <= m; i++) a[i] = v[name, unit, i]
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
END {
	printf "%-20s %10s %9s %9s %9s %9s   %s\n", "job", "IOPS", "MiB/s", "avg-us", "p50-us", "p99-us", "IOPS of each run"
	for (i = 1; i <= k; i++) {
		name = order[i]; runs = ""
		for (j = 1; j <= n[name, "IOPS"]; j++) runs = runs sprintf(" %d", v[name, "IOPS", j])
		printf "%-20s %10d %9.0f %9.1f %9.1f %9.1f  %s\n", name, median(name, "IOPS"), median(name, "MiB/s"),
			median(name, "avg-us"), median(name, "p50-us"), median(name, "p99-us"), runs
	}
}' "$out"
