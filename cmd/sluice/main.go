// Command sluice is the Sluice daemon and its tools, one binary:
//
//	sluice run      [-c FILE]          start the daemon on a topology
//	sluice validate -c FILE            check a topology, print every problem
//	sluice rpc      METHOD [PARAMS]    call the running daemon's JSON-RPC
//	sluice perf     bdev [options]     drive a bdev stack in-process (bdevperf)
//	sluice version                     print the version
//
// Each subcommand takes --help.
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at link time (-ldflags "-X main.version=…"); the module's
// build info supplies it otherwise.
var version = ""

type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"run", "start the daemon on a topology (default: the embedded one)", runCmd},
		{"validate", "check a topology file and print every problem", validateCmd},
		{"rpc", "call a method of the running daemon's JSON-RPC", rpcCmd},
		{"perf", "load generators: perf bdev", perfCmd},
		{"version", "print the version", versionCmd},
	}
}

func main() {
	os.Exit(mainArgs(os.Args[1:], os.Stdout, os.Stderr))
}

func mainArgs(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "sluice: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, "usage: sluice COMMAND [options]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nsluice COMMAND --help shows a command's options.\n")
}
