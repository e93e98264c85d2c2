package conf

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"gopkg.in/yaml.v3"
)

// testMachine is the machine the tests validate against: CPUs 0-3.
var testMachine = Machine{CPUs: []int{0, 1, 2, 3}}

// errorLines runs ParseFor on a file named topo.yaml and returns its
// problems, one message each; nil when it parsed.
func errorLines(t *testing.T, yaml string) []string {
	t.Helper()
	_, err := ParseFor("topo.yaml", []byte(yaml), testMachine)
	if err == nil {
		return nil
	}
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("ParseFor: %T %v, want *Errors", err, err)
	}
	var lines []string
	for _, e := range errs.List {
		lines = append(lines, e.Error())
	}
	return lines
}

// TestRules feeds one file per rule, each with exactly one problem, and wants
// exactly that problem, at its line, in its words.
func TestRules(t *testing.T) {
	long := strings.Repeat("n", NameLenMax+1)
	longSocket := "/" + strings.Repeat("s", UnixPathMax)
	tests := []struct {
		name, yaml, want string
	}{
		// The file as a whole.
		{"unknown section", "bdevs: []\ncolour: red\n",
			"topo.yaml:2: colour: unknown key, want one of reactors, bdevs, stages, targets, rpc, debug"},
		{"stage without a service", "bdevs: []\nstages:\n  - name: Crypt0\n",
			"topo.yaml:3: stages[0].service: missing, want passthru, delay, error, qos, raid0, concat, replica or crypto"},
		{"vhost target not yet", "targets:\n  vhost: {}\n",
			"topo.yaml:2: targets.vhost: not supported yet: this build has no vhost target; remove it"},
		{"not a mapping", "- bdevs\n",
			"topo.yaml:1: a list, want a mapping of reactors, bdevs, stages, targets, rpc, debug"},
		{"repeated section", "rpc: {}\ndebug: {}\nrpc: {}\n",
			"topo.yaml:3: rpc: repeated (first at line 1), want each key once"},
		{"complex key", "? [a, b]\n: 1\n",
			"topo.yaml:1: a key that is not a plain name, want one of reactors, bdevs, stages, targets, rpc, debug"},
		{"syntax: unclosed flow", "rpc: {}\nbdevs:\n  - {name: A\n",
			"topo.yaml:3: YAML syntax: did not find expected ',' or '}'"},
		{"syntax: given up at the end", "bdevs: [\n\n", // the construct is on line 1: yaml.v3 cites where it stopped
			"topo.yaml:3: YAML syntax: did not find expected node content"},
		{"syntax: list in a mapping", "rpc: {}\ndebug: {}\n- a\n",
			"topo.yaml:3: YAML syntax: did not find expected key"},
		{"syntax: scanner", "rpc: {}\ndebug:\n  listen: @x\n",
			"topo.yaml:3: YAML syntax: found character that cannot start any token"},
		{"syntax: unknown anchor", "rpc: {}\n\ndebug: *d\n",
			"topo.yaml:3: YAML syntax: unknown anchor 'd' referenced"},
		{"two documents", "rpc: {}\n---\nrpc: {}\n",
			"topo.yaml:2: a second YAML document, want one document per file"},
		{"alias", "rpc: &r {listen: /a.sock}\ndebug: *r\n",
			"topo.yaml:2: debug: an alias (*r), want the value written out (aliases are not supported)"},
		{"merge key", "bdevs:\n  - <<: {driver: malloc}\n    name: A\n    size: 1MiB\n",
			"topo.yaml:2: bdevs[0].<<: a merge key, want the fields written out (merge keys and aliases are not supported)"},
		{"section not a mapping", "reactors: 5\n",
			"topo.yaml:1: reactors: 5, want a mapping of cores, mode, idle_after"},
		{"bdevs not a list", "bdevs: {name: A}\n",
			"topo.yaml:1: bdevs: a mapping, want a list of bdevs"},

		// reactors:
		{"cores not a list", "reactors:\n  cores: 0-3\n",
			"topo.yaml:2: reactors.cores: 0-3, want a list of CPU ids and a-b ranges such as [0-3, 8]"},
		{"cores empty", "reactors:\n  cores: []\n",
			"topo.yaml:2: reactors.cores: an empty list, want at least one CPU (leave cores out for every CPU the process may run on)"},
		{"core mask", "reactors:\n  cores: [0x3]\n",
			"topo.yaml:2: reactors.cores[0]: 0x3, want a CPU id or an a-b range such as 4-7"},
		{"core negative", "reactors:\n  cores: [-1]\n",
			"topo.yaml:2: reactors.cores[0]: -1, want a CPU id or an a-b range such as 4-7"},
		{"core too large", "reactors:\n  cores:\n    - 0\n    - 1024\n",
			"topo.yaml:4: reactors.cores[1]: 1024, want CPU ids below 1024"},
		{"core range reversed", "reactors:\n  cores: [3-1]\n",
			"topo.yaml:2: reactors.cores[0]: 3-1, want a range a-b with a <= b"},
		{"core twice", "reactors:\n  cores: [0-2, 1]\n",
			"topo.yaml:2: reactors.cores[1]: 1, want CPUs not listed before (1 is in reactors.cores[0])"},
		{"core not on machine", "reactors:\n  cores: [0, 7]\n",
			"topo.yaml:2: reactors.cores[1]: 7, want CPUs this process may run on: 0-3"},
		{"core range partly off machine", "reactors:\n  cores:\n    - 2-5\n",
			"topo.yaml:3: reactors.cores[0]: 2-5, want CPUs this process may run on: 0-3"},
		{"mode unknown", "reactors:\n  mode: interrupt\n",
			"topo.yaml:2: reactors.mode: interrupt, want adaptive or poll"},
		{"mode empty", "reactors:\n  mode: ''\n",
			`topo.yaml:2: reactors.mode: "", want adaptive or poll`},
		{"mode null", "reactors:\n  mode:\n",
			"topo.yaml:2: reactors.mode: no value, want adaptive or poll"},
		{"idle_after without unit", "reactors:\n  idle_after: 1000\n",
			"topo.yaml:2: reactors.idle_after: 1000, want a duration in 10us..10s such as 1ms"},
		{"idle_after too short", "reactors:\n  idle_after: 5us\n",
			"topo.yaml:2: reactors.idle_after: 5us, want a duration in 10us..10s such as 1ms"},
		{"idle_after too long", "reactors:\n  idle_after: 11s\n",
			"topo.yaml:2: reactors.idle_after: 11s, want a duration in 10us..10s such as 1ms"},
		{"idle_after zero", "reactors:\n  idle_after: 0s\n",
			"topo.yaml:2: reactors.idle_after: 0s, want a duration in 10us..10s such as 1ms"},
		{"idle_after negative", "reactors:\n  idle_after: -1ms\n",
			"topo.yaml:2: reactors.idle_after: -1ms, want a duration in 10us..10s such as 1ms"},
		{"idle_after with poll", "reactors:\n  mode: poll\n  idle_after: 1ms\n",
			"topo.yaml:3: reactors.idle_after: 1ms, want no idle_after with mode poll, which never sleeps"},
		{"reactors unknown key", "reactors:\n  main_core: 0\n",
			"topo.yaml:2: reactors.main_core: unknown key, want one of cores, mode, idle_after"},

		// bdevs: names
		{"name missing", "bdevs:\n  - {driver: malloc, size: 1MiB}\n",
			"topo.yaml:2: bdevs[0].name: missing, want 1..64 characters of A-Z a-z 0-9 _ . : -"},
		{"name empty", "bdevs:\n  - {name: '', driver: malloc, size: 1MiB}\n",
			`topo.yaml:2: bdevs[0].name: "", want 1..64 characters of A-Z a-z 0-9 _ . : -`},
		{"name with space", "bdevs:\n  - {name: Malloc 0, driver: malloc, size: 1MiB}\n",
			`topo.yaml:2: bdevs[0].name: "Malloc 0", want 1..64 characters of A-Z a-z 0-9 _ . : -`},
		{"name with slash", "bdevs:\n  - {name: a/b, driver: malloc, size: 1MiB}\n",
			"topo.yaml:2: bdevs[0].name: a/b, want 1..64 characters of A-Z a-z 0-9 _ . : -"},
		{"name too long", "bdevs:\n  - {name: " + long + ", driver: malloc, size: 1MiB}\n",
			"topo.yaml:2: bdevs[0].name: " + long + ", want 1..64 characters of A-Z a-z 0-9 _ . : -"},
		{"name not a scalar", "bdevs:\n  - {name: [A], driver: malloc, size: 1MiB}\n",
			"topo.yaml:2: bdevs[0].name: a list, want 1..64 characters of A-Z a-z 0-9 _ . : -"},
		{"name twice", "bdevs:\n  - {name: M0, driver: malloc, size: 1MiB}\n  - {name: M0, driver: \"null\", size: 1MiB}\n",
			"topo.yaml:3: bdevs[1].name: M0, want a name no other bdev or stage has (bdevs[0] at line 2 has it)"},

		// bdevs: drivers
		{"driver missing", "bdevs:\n  - {name: A, size: 1MiB}\n",
			`topo.yaml:2: bdevs[0].driver: missing, want malloc, "null", uring or nvmf`},
		{"driver bare null", "bdevs:\n  - name: Null0\n    driver: null\n    size: 1MiB\n",
			`topo.yaml:3: bdevs[0].driver: null, want "null" in quotes (a bare null is YAML's empty value, not the null driver)`},
		{"driver bare Null", "bdevs:\n  - {name: Null0, driver: Null, size: 1MiB}\n",
			`topo.yaml:2: bdevs[0].driver: Null, want "null" in quotes (a bare null is YAML's empty value, not the null driver)`},
		{"driver tilde", "bdevs:\n  - {name: A, driver: ~, size: 1MiB}\n",
			`topo.yaml:2: bdevs[0].driver: ~ (YAML null), want malloc, "null", uring or nvmf`},
		{"driver unknown", "bdevs:\n  - {name: A, driver: ramdisk, size: 1MiB}\n",
			`topo.yaml:2: bdevs[0].driver: ramdisk, want malloc, "null", uring or nvmf`},
		{"driver case", "bdevs:\n  - {name: A, driver: Malloc, size: 1MiB}\n",
			`topo.yaml:2: bdevs[0].driver: Malloc, want malloc, "null", uring or nvmf`},
		{"driver not yet", "bdevs:\n  - {name: A, driver: nvme, size: 1MiB}\n",
			`topo.yaml:2: bdevs[0].driver: nvme: not supported yet, want malloc, "null", uring or nvmf`},

		// bdevs: block sizes and sizes
		{"block_size not a power of two", "bdevs:\n  - {name: A, driver: malloc, size: 1MiB}\n  - {name: B, driver: malloc, size: 1MiB}\n  - {name: C, driver: malloc, size: 1MiB, block_size: 3000}\n",
			"topo.yaml:4: bdevs[2].block_size: 3000, want a power of two in 512..4096"},
		{"block_size too large", "bdevs:\n  - {name: A, driver: malloc, size: 1MiB, block_size: 8192}\n",
			"topo.yaml:2: bdevs[0].block_size: 8192, want a power of two in 512..4096"},
		{"block_size too small", "bdevs:\n  - {name: A, driver: malloc, size: 1MiB, block_size: 256}\n",
			"topo.yaml:2: bdevs[0].block_size: 256, want a power of two in 512..4096"},
		{"block_size zero", "bdevs:\n  - {name: A, driver: malloc, size: 1MiB, block_size: 0}\n",
			"topo.yaml:2: bdevs[0].block_size: 0, want a power of two in 512..4096"},
		{"block_size in decimal kB", "bdevs:\n  - {name: A, driver: malloc, size: 1MiB, block_size: 4KB}\n",
			"topo.yaml:2: bdevs[0].block_size: 4KB, want a power of two in 512..4096 (4KB is 4000 bytes)"},
		{"block_size hex", "bdevs:\n  - {name: A, driver: malloc, size: 1MiB, block_size: 0x200}\n",
			"topo.yaml:2: bdevs[0].block_size: 0x200, want " + sizeWantUnit},
		{"size missing", "bdevs:\n  - name: A\n    driver: malloc\n",
			"topo.yaml:2: bdevs[0].size: missing, want size (such as 64MiB) or blocks"},
		{"size and blocks", "bdevs:\n  - name: A\n    driver: malloc\n    size: 1MiB\n    blocks: 2048\n",
			"topo.yaml:5: bdevs[0].blocks: given with size, want exactly one of size and blocks"},
		{"size not whole blocks", "bdevs:\n  - {name: A, driver: malloc, size: 1000}\n",
			"topo.yaml:2: bdevs[0].size: 1000, want a multiple of the block size 512"},
		{"size not whole uring blocks", "bdevs:\n  - {name: A, driver: uring, path: /a.img, size: 6KiB}\n",
			"topo.yaml:2: bdevs[0].size: 6KiB, want a multiple of the block size 4096 (6KiB is 6144 bytes)"},
		{"size ambiguous unit", "bdevs:\n  - {name: A, driver: malloc, size: 64M}\n",
			`topo.yaml:2: bdevs[0].size: 64M, want MiB (powers of 1024) or MB (powers of 1000): "M" is ambiguous`},
		{"size inexact", "bdevs:\n  - {name: A, driver: malloc, size: 1.3KiB}\n",
			"topo.yaml:2: bdevs[0].size: 1.3KiB, want a whole number of bytes (1.3KiB is 1331.2 bytes)"},
		{"size too large", "bdevs:\n  - {name: A, driver: \"null\", size: 2EiB}\n",
			"topo.yaml:2: bdevs[0].size: 2EiB, want a size of at most 1EiB"},
		{"size zero", "bdevs:\n  - {name: A, driver: malloc, size: 0}\n",
			"topo.yaml:2: bdevs[0].size: 0, want at least one block"},
		{"size a list", "bdevs:\n  - {name: A, driver: malloc, size: [1]}\n",
			"topo.yaml:2: bdevs[0].size: a list, want " + sizeWantSyntax},
		{"blocks zero", "bdevs:\n  - {name: A, driver: malloc, blocks: 0}\n",
			"topo.yaml:2: bdevs[0].blocks: 0, want at least one block"},
		{"blocks with unit", "bdevs:\n  - {name: A, driver: malloc, blocks: 12k}\n",
			"topo.yaml:2: bdevs[0].blocks: 12k, want a whole number of blocks such as 131072"},
		{"blocks past any size", "bdevs:\n  - {name: A, driver: malloc, blocks: 2251799813685249}\n",
			"topo.yaml:2: bdevs[0].blocks: 2251799813685249, want at most 2251799813685248 blocks"},
		{"blocks past SizeMax", "bdevs:\n  - {name: A, driver: malloc, block_size: 4096, blocks: 281474976710657}\n",
			"topo.yaml:2: bdevs[0].blocks: 281474976710657, want at most 281474976710656 blocks of 4096 bytes (1EiB)"},

		// bdevs: uuid
		{"uuid malformed", "bdevs:\n  - {name: A, driver: malloc, size: 1MiB, uuid: 5d2a7c1e}\n",
			"topo.yaml:2: bdevs[0].uuid: 5d2a7c1e, want a UUID such as 5d2a7c1e-3b4f-4a8e-9c1d-2e6f7a8b9c0d"},
		{"uuid not canonical", "bdevs:\n  - {name: A, driver: malloc, size: 1MiB, uuid: '{5d2a7c1e-3b4f-4a8e-9c1d-2e6f7a8b9c0d}'}\n",
			"topo.yaml:2: bdevs[0].uuid: {5d2a7c1e-3b4f-4a8e-9c1d-2e6f7a8b9c0d}, want a UUID such as 5d2a7c1e-3b4f-4a8e-9c1d-2e6f7a8b9c0d"},
		{"uuid nil", "bdevs:\n  - {name: A, driver: malloc, size: 1MiB, uuid: 00000000-0000-0000-0000-000000000000}\n",
			"topo.yaml:2: bdevs[0].uuid: 00000000-0000-0000-0000-000000000000, want a UUID other than the nil UUID (leave uuid out to let the driver pick one)"},
		{"uuid twice", "bdevs:\n  - {name: A, driver: malloc, size: 1MiB, uuid: 5d2a7c1e-3b4f-4a8e-9c1d-2e6f7a8b9c0d}\n  - {name: B, driver: malloc, size: 1MiB, uuid: 5D2A7C1E-3B4F-4A8E-9C1D-2E6F7A8B9C0D}\n",
			"topo.yaml:3: bdevs[1].uuid: 5D2A7C1E-3B4F-4A8E-9C1D-2E6F7A8B9C0D, want a UUID no other bdev has (bdevs[0] at line 2 has it)"},

		// bdevs: path
		{"path on malloc", "bdevs:\n  - {name: A, driver: malloc, size: 1MiB, path: /a.img}\n",
			"topo.yaml:2: bdevs[0].path: /a.img, want no path: driver malloc has no file (uring does)"},
		{"path empty on null", "bdevs:\n  - {name: A, driver: \"null\", size: 1MiB, path: ''}\n",
			`topo.yaml:2: bdevs[0].path: "", want no path: driver null has no file (uring does)`},
		{"path missing on uring", "bdevs:\n  - {name: A, driver: uring, size: 1MiB}\n",
			"topo.yaml:2: bdevs[0].path: missing, want an absolute path of a file or block device"},
		{"path empty on uring", "bdevs:\n  - {name: A, driver: uring, size: 1MiB, path: \"\"}\n",
			`topo.yaml:2: bdevs[0].path: "", want an absolute path of a file or block device`},
		{"path relative", "bdevs:\n  - {name: A, driver: uring, size: 1MiB, path: disk.img}\n",
			"topo.yaml:2: bdevs[0].path: disk.img, want an absolute path of a file or block device of at most 4095 printable bytes"},
		{"path control character", "bdevs:\n  - {name: A, driver: uring, size: 1MiB, path: \"/a\\tb\"}\n",
			`topo.yaml:2: bdevs[0].path: "/a\tb", want an absolute path of a file or block device of at most 4095 printable bytes`},
		{"path twice", "bdevs:\n  - {name: A, driver: uring, size: 1MiB, path: /d/a.img}\n  - {name: B, driver: uring, size: 1MiB, path: /d/../d/a.img}\n",
			"topo.yaml:3: bdevs[1].path: /d/../d/a.img, want a file no other bdev uses (bdevs[0] at line 2 does)"},

		// bdevs: shape
		{"bdev not a mapping", "bdevs:\n  - Malloc0\n",
			"topo.yaml:2: bdevs[0]: Malloc0, want a mapping of name, driver, block_size, size, blocks, uuid, path, trtype, adrfam, traddr, trsvcid, subnqn, hostnqn, hdgst, ddgst, io_queue_size, num_io_queues, reconnect_delay_sec, ctrlr_loss_timeout_sec, fast_io_fail_timeout_sec"},
		{"bdev unknown key", "bdevs:\n  - name: A\n    driver: malloc\n    size: 1MiB\n    colour: red\n",
			"topo.yaml:5: bdevs[0].colour: unknown key, want one of name, driver, block_size, size, blocks, uuid, path, trtype, adrfam, traddr, trsvcid, subnqn, hostnqn, hdgst, ddgst, io_queue_size, num_io_queues, reconnect_delay_sec, ctrlr_loss_timeout_sec, fast_io_fail_timeout_sec"},
		{"bdev repeated key", "bdevs:\n  - name: A\n    driver: malloc\n    name: B\n    size: 1MiB\n",
			"topo.yaml:4: bdevs[0].name: repeated (first at line 2), want each key once"},

		// rpc: and debug:
		{"rpc relative", "rpc:\n  listen: sluice.sock\n",
			`topo.yaml:2: rpc.listen: sluice.sock, want an absolute path of a unix socket of at most 107 bytes, or "" to disable`},
		{"rpc too long", "rpc:\n  listen: " + longSocket + "\n",
			"topo.yaml:2: rpc.listen: " + longSocket + `, want an absolute path of a unix socket of at most 107 bytes, or "" to disable`},
		{"rpc null", "rpc:\n  listen: null\n",
			`topo.yaml:2: rpc.listen: null (YAML null), want an absolute path of a unix socket of at most 107 bytes, or "" to disable`},
		{"rpc unknown key", "rpc:\n  listen: /a.sock\n  mode: 0600\n",
			"topo.yaml:3: rpc.mode: unknown key, want one of listen"},
		{"debug no port", "debug:\n  listen: localhost\n",
			`topo.yaml:2: debug.listen: localhost, want host:port such as 127.0.0.1:9390, or "" to disable`},
		{"debug no host", "debug:\n  listen: ':9390'\n",
			"topo.yaml:2: debug.listen: :9390, want a host before the port (0.0.0.0:9390 listens on every address)"},
		{"debug port too large", "debug:\n  listen: 127.0.0.1:70000\n",
			"topo.yaml:2: debug.listen: 127.0.0.1:70000, want a port in 0..65535 (0 takes any free port)"},
		{"debug port by name", "debug:\n  listen: 127.0.0.1:http\n",
			"topo.yaml:2: debug.listen: 127.0.0.1:http, want a port in 0..65535 (0 takes any free port)"},
		{"debug bad host", "debug:\n  listen: bad_host:1\n",
			"topo.yaml:2: debug.listen: bad_host:1, want an IP address or host name before the port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := errorLines(t, tc.yaml)
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("ParseFor(%q):\n got %q\nwant %q", tc.yaml, got, tc.want)
			}
		})
	}
}

// TestEveryProblemAtOnce: one file, many problems, each reported once, in
// file order, none hiding another.
func TestEveryProblemAtOnce(t *testing.T) {
	yaml := `reactors:
  cores: [0, 9]
  mode: fast
bdevs:
  - name: Malloc0
    driver: malloc
    size: 64MiB
  - name: Malloc0
    driver: malloc
    block_size: 3000
    size: 1MiB
  - name: Null0
    driver: null
    size: 1GiB
  - name: Disk0
    driver: uring
    size: 1.3KiB
    colour: blue
stages:
  - name: Crypt0
rpc:
  listen: sluice.sock
`
	want := []string{
		"topo.yaml:2: reactors.cores[1]: 9, want CPUs this process may run on: 0-3",
		"topo.yaml:3: reactors.mode: fast, want adaptive or poll",
		"topo.yaml:8: bdevs[1].name: Malloc0, want a name no other bdev or stage has (bdevs[0] at line 5 has it)",
		"topo.yaml:10: bdevs[1].block_size: 3000, want a power of two in 512..4096",
		`topo.yaml:13: bdevs[2].driver: null, want "null" in quotes (a bare null is YAML's empty value, not the null driver)`,
		"topo.yaml:15: bdevs[3].path: missing, want an absolute path of a file or block device",
		"topo.yaml:17: bdevs[3].size: 1.3KiB, want a whole number of bytes (1.3KiB is 1331.2 bytes)",
		"topo.yaml:18: bdevs[3].colour: unknown key, want one of name, driver, block_size, size, blocks, uuid, path, trtype, adrfam, traddr, trsvcid, subnqn, hostnqn, hdgst, ddgst, io_queue_size, num_io_queues, reconnect_delay_sec, ctrlr_loss_timeout_sec, fast_io_fail_timeout_sec",
		"topo.yaml:20: stages[0].service: missing, want passthru, delay, error, qos, raid0, concat, replica or crypto",
		`topo.yaml:22: rpc.listen: sluice.sock, want an absolute path of a unix socket of at most 107 bytes, or "" to disable`,
	}
	got := errorLines(t, yaml)
	if !slices.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Parse leaves out only the machine's problem.
	_, err := Parse("topo.yaml", []byte(yaml))
	if err == nil || err.Error() != strings.Join(want[1:], "\n") {
		t.Errorf("Parse:\n%v\nwant:\n%s", err, strings.Join(want[1:], "\n"))
	}
}

// TestBareNullDriver: the null driver must be quoted, and the error for a
// bare null says so; quoted, it parses.
func TestBareNullDriver(t *testing.T) {
	bare := "bdevs:\n  - name: Null0\n    driver: null\n    size: 1GiB\n"
	want := `topo.yaml:3: bdevs[0].driver: null, want "null" in quotes (a bare null is YAML's empty value, not the null driver)`
	if got := errorLines(t, bare); len(got) != 1 || got[0] != want {
		t.Errorf("bare null: got %q, want %q", got, want)
	}
	for _, quoted := range []string{`"null"`, `'null'`, `!!str null`} {
		top, err := Parse("topo.yaml", []byte(strings.Replace(bare, "null\n", quoted+"\n", 1)))
		if err != nil || top.Bdevs[0].Driver != DriverNull {
			t.Errorf("driver: %s: %v, want the null driver", quoted, err)
		}
	}
}

// TestUnknownKeys: an unknown key is rejected at its own line, at every level.
func TestUnknownKeys(t *testing.T) {
	yaml := "reactors:\n  mode: poll\n  polling: yes\nbdevs:\n  - name: A\n    driver: malloc\n    size: 1MiB\n\n    sise: 2MiB\ndebug:\n  listen: ''\n  pprof: true\nextra: 1\n"
	want := []string{
		"topo.yaml:3: reactors.polling: unknown key, want one of cores, mode, idle_after",
		"topo.yaml:9: bdevs[0].sise: unknown key, want one of name, driver, block_size, size, blocks, uuid, path, trtype, adrfam, traddr, trsvcid, subnqn, hostnqn, hdgst, ddgst, io_queue_size, num_io_queues, reconnect_delay_sec, ctrlr_loss_timeout_sec, fast_io_fail_timeout_sec",
		"topo.yaml:12: debug.pprof: unknown key, want one of listen",
		"topo.yaml:13: extra: unknown key, want one of reactors, bdevs, stages, targets, rpc, debug",
	}
	if got := errorLines(t, yaml); !slices.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestDefaults: what a file leaves out is filled after validation (C1).
func TestDefaults(t *testing.T) {
	top, err := Parse("topo.yaml", []byte(`bdevs:
  - {name: M, driver: malloc, size: 1MiB}
  - {name: N, driver: "null", blocks: 8}
  - {name: U, driver: uring, path: /u.img, size: 1MiB}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Topology{
		Reactors: Reactors{Mode: ModeAdaptive, IdleAfter: IdleAfterDefault},
		Bdevs: []Bdev{
			{Name: "M", Driver: DriverMalloc, BlockSize: 512, Size: 1 << 20, Blocks: 2048},
			{Name: "N", Driver: DriverNull, BlockSize: 512, Size: 4096, Blocks: 8},
			{Name: "U", Driver: DriverUring, BlockSize: 4096, Size: 1 << 20, Blocks: 256, Path: "/u.img"},
		},
		RPC:   RPC{Listen: RPCListenDefault},
		Debug: Debug{Listen: DebugListenDefault},
	}
	if !sameTopology(top, &want) {
		t.Errorf("got  %+v\nwant %+v", *top, want)
	}

	empty, err := Parse("empty.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want = Topology{Reactors: Reactors{Mode: ModeAdaptive, IdleAfter: IdleAfterDefault},
		RPC: RPC{Listen: RPCListenDefault}, Debug: Debug{Listen: DebugListenDefault}}
	if !sameTopology(empty, &want) {
		t.Errorf("empty file: got %+v, want %+v", *empty, want)
	}

	// Empty sections are sections with defaults; "" disables a listener.
	top, err = Parse("topo.yaml", []byte("reactors:\nbdevs:\nrpc:\n  listen: ''\ndebug: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if top.Bdevs != nil || top.RPC.Listen != "" || top.Debug.Listen != DebugListenDefault {
		t.Errorf("empty sections: got %+v", *top)
	}

	poll, err := Parse("topo.yaml", []byte("reactors: {mode: poll}\n"))
	if err != nil || poll.Reactors.Mode != ModePoll || poll.Reactors.IdleAfter != 0 {
		t.Errorf("mode poll: got %+v, %v; want no idle_after", poll.Reactors, err)
	}
}

// TestExamples: every example and the default parse without a problem, on
// a machine with the CPUs they name.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"null.yaml", "malloc.yaml", "uring.yaml"} {
		if !slices.Contains(files, filepath.Join("examples", want)) {
			t.Errorf("examples/%s missing", want)
		}
	}
	for _, name := range append(files, "default.yaml") {
		top, err := LoadFor(name, testMachine)
		if err != nil {
			t.Errorf("%s:\n%v", name, err)
			continue
		}
		saved, err := Marshal(top)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := Parse(name, saved); err != nil || !sameTopology(top, back) {
			t.Errorf("%s: round trip: %v\n%s", name, err, saved)
		}
	}

	null, err := Load("examples/null.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if b := null.Bdevs[0]; b.Name != "Null0" || b.Driver != DriverNull {
		t.Errorf("examples/null.yaml: bdev %+v, want Null0 with the null driver", b)
	}
}

func TestDefault(t *testing.T) {
	top := Default()
	want := []Bdev{{Name: "Malloc0", Driver: DriverMalloc, BlockSize: 512, Size: 64 << 20, Blocks: 131072}}
	if !slices.Equal(top.Bdevs, want) {
		t.Errorf("bdevs %+v, want %+v", top.Bdevs, want)
	}
	if top.RPC.Listen != RPCListenDefault || top.Debug.Listen != DebugListenDefault ||
		top.Reactors.Cores != nil || top.Reactors.Mode != ModeAdaptive {
		t.Errorf("got %+v", *top)
	}
	if err := top.Validate(testMachine); err != nil {
		t.Error(err)
	}
	// Each call parses afresh: callers may change what they get.
	top.Bdevs[0].Name = "Changed"
	if Default().Bdevs[0].Name != "Malloc0" {
		t.Error("Default shares its result between calls")
	}
}

// TestRoundTrip: Marshal writes what Parse reads back to the same value
// (C3), for Topologies parsed or built in code and validated.
func TestRoundTrip(t *testing.T) {
	built := []*Topology{
		{},
		{
			Reactors: Reactors{Cores: []int{0, 1, 2, 3, 5, 7, 8, 9, 1023}, Mode: ModePoll},
			Bdevs: []Bdev{
				{Name: "null", Driver: DriverNull, Size: 1000 * 512},
				{Name: "-", Driver: DriverMalloc, Blocks: 3, BlockSize: 4096},
				{Name: "1e3", Driver: DriverMalloc, Size: 3 << 29, UUID: uuid.MustParse("5d2a7c1e-3b4f-4a8e-9c1d-2e6f7a8b9c0d")},
				{Name: "true", Driver: DriverUring, Size: 100e9, BlockSize: 512, Path: "/dev/disk/by-id/nvme: #1 'x'"},
				{Name: "0x10", Driver: DriverMalloc, Size: SizeMax},
			},
			RPC:   RPC{Listen: "/tmp/a b.sock"},
			Debug: Debug{Listen: "[::1]:0"},
		},
		{Reactors: Reactors{IdleAfter: 10 * time.Microsecond}, Debug: Debug{Listen: "localhost:1"}},
	}
	machine := Machine{CPUs: make([]int, CoresMax)}
	for i := range machine.CPUs {
		machine.CPUs[i] = i
	}
	for i, top := range built {
		if err := top.Validate(machine); err != nil {
			t.Fatalf("built[%d]: %v", i, err)
		}
		saved, err := Marshal(top)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseFor("saved.yaml", saved, machine)
		if err != nil {
			t.Fatalf("built[%d]: %v\n%s", i, err, saved)
		}
		if !sameTopology(top, back) {
			t.Errorf("built[%d]: Parse(Marshal(t)) = %+v\nwant %+v\nsaved:\n%s", i, *back, *top, saved)
		}
		if again, _ := Marshal(back); string(again) != string(saved) {
			t.Errorf("built[%d]: Marshal not stable:\n%s\nthen\n%s", i, saved, again)
		}
		// yaml.Marshal goes through MarshalYAML to the same document.
		viaYAML, err := yaml.Marshal(top)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := ParseFor("yaml.yaml", viaYAML, machine); err != nil || !sameTopology(top, back) {
			t.Errorf("built[%d]: yaml.Marshal: %v\n%s", i, err, viaYAML)
		}
	}

	// The form Marshal writes: every field but what is unset, cores as ranges.
	saved, _ := Marshal(built[1])
	want := `reactors:
  cores: [0-3, 5, 7-9, 1023]
  mode: poll
bdevs:
  - name: "null"
    driver: "null"
    block_size: 512
    size: 500KiB
  - name: '-'
    driver: malloc
    block_size: 4096
    size: 12KiB
  - name: "1e3"
    driver: malloc
    block_size: 512
    size: 1536MiB
    uuid: 5d2a7c1e-3b4f-4a8e-9c1d-2e6f7a8b9c0d
  - name: "true"
    driver: uring
    block_size: 512
    size: 100GB
    path: '/dev/disk/by-id/nvme: #1 ''x'''
  - name: "0x10"
    driver: malloc
    block_size: 512
    size: 1EiB
rpc:
  listen: /tmp/a b.sock
debug:
  listen: '[::1]:0'
`
	if string(saved) != want {
		t.Errorf("Marshal:\n%s\nwant:\n%s", saved, want)
	}
}

// TestValidate: a Topology built in code is checked by the same rules,
// with no file or line to cite, and completed with the same defaults.
func TestValidate(t *testing.T) {
	top := &Topology{
		Reactors: Reactors{Cores: []int{1, 0, 9}, Mode: "fast", IdleAfter: time.Hour},
		Bdevs: []Bdev{
			{Name: "A", Driver: DriverMalloc, Size: 1 << 20, Blocks: 7},
			{Name: "A", Driver: DriverUring, Size: 1 << 20},
			{Name: "", Driver: "tape", BlockSize: 100},
		},
		RPC:   RPC{Listen: "rpc.sock"},
		Debug: Debug{Listen: "9390"},
	}
	want := []string{
		"reactors.cores[1]: 0, want CPU ids in ascending order, each once",
		"reactors.cores[0]: 1, want CPUs this process may run on: 0",
		"reactors.cores[2]: 9, want CPUs this process may run on: 0",
		"reactors.mode: fast, want adaptive or poll",
		"reactors.idle_after: 1h0m0s, want a duration in 10us..10s such as 1ms",
		"bdevs[0].blocks: 7, want 2048 to match size 1MiB",
		"bdevs[1].path: missing, want an absolute path of a file or block device",
		"bdevs[2].name: missing, want 1..64 characters of A-Z a-z 0-9 _ . : -",
		`bdevs[2].driver: tape, want malloc, "null", uring or nvmf`,
		"bdevs[2].block_size: 100, want a power of two in 512..4096",
		"bdevs[2].size: missing, want size (such as 64MiB) or blocks",
		"bdevs[1].name: A, want a name no other bdev or stage has (bdevs[0] has it)",
		`rpc.listen: rpc.sock, want an absolute path of a unix socket of at most 107 bytes, or "" to disable`,
		`debug.listen: 9390, want host:port such as 127.0.0.1:9390, or "" to disable`,
	}
	err := top.Validate(Machine{CPUs: []int{0}})
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Validate: %v, want *Errors", err)
	}
	var got []string
	for _, e := range errs.List {
		if e.File != "" || e.Line != 0 {
			t.Errorf("%q cites %s:%d, want no file", e.Error(), e.File, e.Line)
		}
		got = append(got, e.Error())
	}
	if !slices.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	ok := &Topology{Bdevs: []Bdev{{Name: "U", Driver: DriverUring, Path: "/u", Blocks: 4}}}
	if err := ok.Validate(testMachine); err != nil {
		t.Fatal(err)
	}
	wantOK := &Topology{
		Reactors: Reactors{Mode: ModeAdaptive, IdleAfter: IdleAfterDefault},
		Bdevs:    []Bdev{{Name: "U", Driver: DriverUring, Path: "/u", Blocks: 4, BlockSize: 4096, Size: 16 << 10}},
	}
	if !sameTopology(ok, wantOK) {
		t.Errorf("Validate filled %+v, want %+v", *ok, *wantOK)
	}
}

// TestValidateParsed: Validate on a parsed Topology cites the file's lines
// while the Topology is unchanged, and none once code has changed it.
func TestValidateParsed(t *testing.T) {
	top, err := Parse("topo.yaml", []byte("reactors:\n  cores:\n    - 0-1\n    - 6\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = top.Validate(testMachine)
	if err == nil || err.Error() != "topo.yaml:4: reactors.cores[1]: 6, want CPUs this process may run on: 0-3" {
		t.Errorf("Validate: %v", err)
	}
	top.Reactors.Cores = []int{0, 1, 7}
	err = top.Validate(testMachine)
	if err == nil || err.Error() != "reactors.cores[2]: 7, want CPUs this process may run on: 0-3" {
		t.Errorf("Validate after a change: %v", err)
	}
}

func TestCoresOn(t *testing.T) {
	m := Machine{CPUs: []int{3, 1, 2, 1}}
	if got := (&Reactors{}).CoresOn(m); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("no cores: CoresOn = %v, want the machine's, sorted: [1 2 3]", got)
	}
	r := &Reactors{Cores: []int{2}}
	got := r.CoresOn(m)
	got[0] = 9
	if r.Cores[0] != 2 {
		t.Error("CoresOn shares its result with Cores")
	}
	for _, tc := range []struct {
		m    Machine
		want string
	}{
		{Machine{}, "topo.yaml: reactors.cores: left out, on a machine with no CPU this process may run on, want a machine with one"},
		{Machine{CPUs: []int{0, 1024}}, "topo.yaml: reactors.cores: left out, on a machine with CPU ids of 1024 or more, want cores listed, each below 1024"},
	} {
		if _, err := ParseFor("topo.yaml", nil, tc.m); err == nil || err.Error() != tc.want {
			t.Errorf("machine %v: %v, want %q", tc.m, err, tc.want)
		}
	}
}

func TestHostMachine(t *testing.T) {
	m := HostMachine()
	if len(m.CPUs) == 0 || len(m.CPUs) > CoresMax || !slices.IsSorted(m.CPUs) {
		t.Fatalf("HostMachine().CPUs = %v", m.CPUs)
	}
	if _, err := ParseFor("default.yaml", DefaultYAML, m); err != nil {
		t.Errorf("the default does not run here: %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "topo.yaml")
	if err := os.WriteFile(path, []byte("bdevs:\n  - {name: A, driver: malloc, size: 3}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want := path + ":2: bdevs[0].size: 3, want a multiple of the block size 512"; err == nil || err.Error() != want {
		t.Errorf("Load: %v, want %q", err, want)
	}

	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want os.ErrNotExist", err)
	}

	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("#"+strings.Repeat(" ", FileSizeMax)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadFor(big, testMachine)
	if want := big + ": larger than 1MiB, want a topology, which is far smaller"; err == nil || err.Error() != want {
		t.Errorf("Load of a large file: %v, want %q", err, want)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "t.yaml", Line: 14, Field: "bdevs[2].block_size", Value: "3000", Want: "a power of two in 512..4096"},
			"t.yaml:14: bdevs[2].block_size: 3000, want a power of two in 512..4096"},
		{Error{File: "t.yaml", Field: "a", Value: "x"}, "t.yaml: a: x"},
		{Error{Line: 3, Field: "a", Msg: "missing", Want: "b"}, "line 3: a: missing, want b"},
		{Error{Field: "a", Value: "", Want: "b"}, `a: "", want b`},
		{Error{Field: "a", Value: "x, y", Want: "b"}, `a: "x, y", want b`},
		{Error{Field: "a", Value: "x\ny", Want: "b"}, `a: "x\ny", want b`},
		{Error{File: "t.yaml", Line: 1, Msg: "YAML syntax: bad"}, "t.yaml:1: YAML syntax: bad"},
	}
	for _, tc := range tests {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.e, got, tc.want)
		}
	}

	_, err := Parse("t.yaml", []byte("rpc: {listen: x}\ndebug: {listen: y}\n"))
	var first *Error
	if !errors.As(err, &first) || first.Line != 1 || first.Field != "rpc.listen" || first.Value != "x" {
		t.Errorf("errors.As(%v) = %+v, want the first problem", err, first)
	}
	if n := strings.Count(err.Error(), "\n"); n != 1 {
		t.Errorf("%q: %d newlines, want one line per problem", err, n)
	}
}

// TestErrorsMax: a file with a great many problems lists the first
// errorsMax and counts the rest.
func TestErrorsMax(t *testing.T) {
	var b strings.Builder
	b.WriteString("bdevs:\n")
	for range errorsMax + 10 {
		b.WriteString("  - {name: A, driver: malloc, size: 1MiB, x: 1}\n")
	}
	_, err := Parse("t.yaml", []byte(b.String()))
	var errs *Errors
	if !errors.As(err, &errs) || len(errs.List) != errorsMax+1 {
		t.Fatalf("got %d problems, want %d", len(errs.List), errorsMax+1)
	}
	// Each bdev after the first has two problems: x, and its name again.
	if last := errs.List[errorsMax].Error(); last != "t.yaml: 219 more problems not shown" {
		t.Errorf("last: %q", last)
	}
}

// TestLimits: the counts that bound a file.
func TestLimits(t *testing.T) {
	var b strings.Builder
	b.WriteString("bdevs:\n")
	for i := range BdevsMax + 1 {
		b.WriteString("  - {name: M" + strconv.Itoa(i) + ", driver: \"null\", size: 1MiB}\n")
	}
	got := errorLines(t, b.String())
	if want := "topo.yaml:2: bdevs: 1025 bdevs, want at most 1024"; len(got) != 1 || got[0] != want {
		t.Errorf("got %q, want %q", got, want)
	}

	var cores []string
	for i := range CoresMax + 1 {
		cores = append(cores, strconv.Itoa(i%CoresMax))
	}
	got = errorLines(t, "reactors:\n  cores: ["+strings.Join(cores, ", ")+"]\n")
	if want := "topo.yaml:2: reactors.cores: 1025 entries, want at most 1024"; len(got) != 1 || got[0] != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
