package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluice-storage/sluice/perf"
)

// perfTools are the load generators under `sluice perf`.
var perfTools = []command{
	{"bdev", "drive a bdev stack inside this process (SPDK bdevperf's job)", perfBdevCmd},
	{"nvmf", "drive NVMe/TCP namespaces through our host (spdk_nvme_perf's job)", perfNVMfCmd},
}

func perfCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		for _, t := range perfTools {
			if t.name == args[0] {
				return t.run(args[1:], stdout, stderr)
			}
		}
	}
	fmt.Fprint(stderr, "usage: sluice perf TOOL [options]\n\ntools:\n")
	for _, t := range perfTools {
		fmt.Fprintf(stderr, "  %-6s %s\n", t.name, t.summary)
	}
	fmt.Fprint(stderr, "\nsluice perf TOOL --help shows a tool's options.\n")
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		return 0
	}
	return 2
}

// perfBdevCmd runs `sluice perf bdev`; Ctrl-C ends the run early with a report.
func perfBdevCmd(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return perf.MainBdev(ctx, args, stdout, stderr, registerDrivers)
}
