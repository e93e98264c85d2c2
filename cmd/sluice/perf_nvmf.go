package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluice-storage/sluice/perf"
)

// perfNVMfCmd runs `sluice perf nvmf` (spdk_nvme_perf's job over NVMe/TCP
// through our host); Ctrl-C ends the run early with a report.
func perfNVMfCmd(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return perf.MainNVMf(ctx, args, stdout, stderr)
}
