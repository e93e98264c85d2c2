package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-storage/sluice/internal/jsonrpc"
)

// rpcTimeout bounds one call: methods answer in milliseconds, and a hung
// daemon should not hang the operator's shell.
const rpcTimeout = 60 * time.Second

func rpcCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rpc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sock := fs.String("s", defaultRPCSocket, "the daemon's RPC `socket`")
	list := fs.Bool("list", false, "list the daemon's methods with their parameters")
	raw := fs.Bool("raw", false, "print a string result as is, not as a JSON string (save_config --format yaml)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: sluice rpc [-s SOCKET] METHOD [--name value]... 
       sluice rpc [-s SOCKET] METHOD '{json params}'
       sluice rpc [-s SOCKET] --list

Calls METHOD on the running daemon and prints the result as indented JSON.
--name value pairs become the params object; values that parse as JSON
numbers, booleans or objects are sent as such, others as strings.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	if *list {
		return rpcList(*sock, stdout, stderr)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	method := fs.Arg(0)
	params, err := rpcParams(fs.Args()[1:])
	if err != nil {
		fmt.Fprintf(stderr, "sluice rpc: %v\n", err)
		return 2
	}
	result, err := jsonrpc.Call(*sock, method, params, rpcTimeout)
	if err != nil {
		fmt.Fprintf(stderr, "sluice rpc %s: %v\n", method, err)
		return 1
	}
	var s string
	if *raw && json.Unmarshal(result, &s) == nil {
		fmt.Fprint(stdout, s)
		return 0
	}
	var out bytes.Buffer
	if err := json.Indent(&out, result, "", "  "); err != nil {
		out.Write(result)
	}
	fmt.Fprintln(stdout, out.String())
	return 0
}

// rpcParams turns the arguments after METHOD into the params object.
func rpcParams(args []string) (any, error) {
	if len(args) == 1 && strings.HasPrefix(strings.TrimSpace(args[0]), "{") {
		raw := json.RawMessage(args[0])
		if !json.Valid(raw) {
			return nil, errors.New("params: not valid JSON")
		}
		return raw, nil
	}
	if len(args) == 0 {
		return nil, nil
	}
	params := map[string]any{}
	for i := 0; i < len(args); i++ {
		name, ok := strings.CutPrefix(args[i], "--")
		if !ok || name == "" {
			return nil, fmt.Errorf("argument %q: want --name value", args[i])
		}
		name = strings.ReplaceAll(name, "-", "_") // --block-size → block_size, as rpc.py
		value := "true"
		if n, v, found := strings.Cut(name, "="); found {
			name, value = n, v
		} else if i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
			value = args[i+1]
			i++
		}
		params[name] = paramValue(value)
	}
	return params, nil
}

func paramValue(s string) any {
	if _, err := strconv.ParseFloat(s, 64); err == nil || s == "true" || s == "false" ||
		strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[") {
		if json.Valid([]byte(s)) {
			return json.RawMessage(s)
		}
	}
	return s
}

func rpcList(sock string, stdout, stderr io.Writer) int {
	// rpc_get_methods answers names only, as SPDK's does; this one adds
	// each method's parameters.
	result, err := jsonrpc.Call(sock, "sluice_get_methods", nil, rpcTimeout)
	if err != nil {
		fmt.Fprintf(stderr, "sluice rpc --list: %v\n", err)
		return 1
	}
	var methods []struct {
		Name   string `json:"name"`
		Params string `json:"params"`
	}
	if err := json.Unmarshal(result, &methods); err != nil {
		fmt.Fprintf(stderr, "sluice rpc --list: unexpected answer: %s\n", result)
		return 1
	}
	for _, m := range methods {
		fmt.Fprintf(stdout, "%-36s %s\n", m.Name, m.Params)
	}
	return 0
}
