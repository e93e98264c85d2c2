package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/sluice-storage/sluice/conf"
)

func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "", "topology `FILE` to check (required)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: sluice validate -c FILE\n\nChecks a topology without starting anything and prints every problem\nas file:line: field: value, want …\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	if *file == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if _, err := conf.LoadFor(*file, conf.HostMachine()); err != nil {
		var list *conf.Errors
		if errors.As(err, &list) {
			fmt.Fprintln(stderr, list.Error())
			fmt.Fprintf(stderr, "%s: %d problem(s)\n", *file, len(list.List))
		} else {
			fmt.Fprintf(stderr, "sluice validate: %v\n", err)
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", *file)
	return 0
}
