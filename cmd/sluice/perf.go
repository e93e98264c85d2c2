package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sluice-storage/sluice/conf"
	"github.com/sluice-storage/sluice/perf"
	"github.com/sluice-storage/sluice/services/bdev"
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
	return perf.MainBdev(ctx, args, stdout, stderr, registerDrivers, perfStages(stderr))
}

// perfStages builds a topology's stages for `sluice perf bdev` with the
// daemon's own builder, so -c takes the same files `sluice run` does; the
// stages' warnings go to stderr beside the progress lines.
func perfStages(stderr io.Writer) func(*bdev.Registry, []conf.Stage) (func() error, error) {
	return func(reg *bdev.Registry, stages []conf.Stage) (func() error, error) {
		d := &daemon{log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
			bdevPaths: map[string]string{}}
		p, err := makeStages(d, reg, stages)
		if err != nil {
			return nil, err
		}
		return func() error { return p.stop(time.Time{}) }, nil
	}
}
