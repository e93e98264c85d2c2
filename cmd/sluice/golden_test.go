package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/sluice-storage/sluice/internal/jsonrpc"
)

var (
	uuidPattern  = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	ticksPattern = regexp.MustCompile(`"(busy|idle|pid|ticks)": [0-9]+`)
	// in_interrupt says whether an adaptive reactor sleeps at the moment of the call.
	interruptPattern = regexp.MustCompile(`"in_interrupt": (true|false)`)
)

// TestRPCGolden replays testdata/rpc: each `call METHOD` sends its input as
// params and prints the answer's JSON shape (UUIDs, ticks, pids and the
// temp directory normalized). The expected answers were written from SPDK's
// JSON-RPC documentation for each method; `go test -rewrite` regenerates
// them for review.
func TestRPCGolden(t *testing.T) {
	dir := t.TempDir()
	topo, sock := topology(t, dir, "reactors:\n  cores: [0]\nbdevs:\n  - name: Malloc0\n    driver: malloc\n    size: 1MiB\n    uuid: 11111111-2222-3333-4444-555555555555\n")
	if err := os.WriteFile(filepath.Join(dir, "disk.img"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, topo, sock, true)
	defer p.stop(t, syscall.SIGTERM)
	datadriven.RunTest(t, "testdata/rpc", func(t *testing.T, td *datadriven.TestData) string {
		if td.Cmd != "call" || len(td.CmdArgs) != 1 {
			t.Fatalf("%s: want `call METHOD`", td.Pos)
		}
		var params any
		if in := strings.TrimSpace(strings.ReplaceAll(td.Input, "$DIR", dir)); in != "" {
			params = json.RawMessage(in)
		}
		result, err := jsonrpc.Call(sock, td.CmdArgs[0].Key, params, 30*time.Second)
		var out string
		if err != nil {
			b, _ := json.MarshalIndent(map[string]any{"error": err}, "", "  ")
			out = string(b)
		} else {
			var buf bytes.Buffer
			json.Indent(&buf, result, "", "  ")
			out = buf.String()
		}
		out = strings.ReplaceAll(out, dir, "$DIR")
		out = uuidPattern.ReplaceAllString(out, "<uuid>")
		out = ticksPattern.ReplaceAllString(out, `"$1": <n>`)
		out = interruptPattern.ReplaceAllString(out, `"in_interrupt": <bool>`)
		return out + "\n"
	})
}
