package conf

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestStageRules: each stage rule, one problem per case, at its line with
// field, value and what is wanted.
func TestStageRules(t *testing.T) {
	const head = "bdevs:\n  - {name: M0, driver: malloc, size: 1MiB}\n  - {name: M1, driver: malloc, size: 1MiB}\nstages:\n"
	tests := []struct {
		name, stages, want string
	}{
		{"unknown service", "  - {name: S, service: raid5, base: M0}\n",
			"topo.yaml:5: stages[0].service: raid5, want passthru, delay, error, qos, raid0, concat, replica or crypto"},
		{"raid1 is replica", "  - {name: S, service: raid1, bases: [M0, M1]}\n",
			"topo.yaml:5: stages[0].service: raid1, want passthru, delay, error, qos, raid0, concat, replica or crypto (raid1 is the replica service)"},
		{"no base", "  - {name: S, service: passthru}\n",
			"topo.yaml:5: stages[0].base: missing, want the bdev or stage it is built on"},
		{"two bases for one", "  - {name: S, service: crypto, bases: [M0, M1], key_file: /k}\n",
			"topo.yaml:5: stages[0].bases: 2 bases, want 1 base (base: X) for crypto"},
		{"base and bases", "  - {name: S, service: raid0, base: M0, bases: [M0, M1]}\n",
			"topo.yaml:5: stages[0].bases: given with base, want exactly one of base and bases"},
		{"base twice", "  - {name: S, service: raid0, bases: [M0, M0]}\n",
			"topo.yaml:5: stages[0].bases[1]: M0, want each base once"},
		{"missing base", "  - {name: S, service: concat, bases: [M0, M9]}\n",
			"topo.yaml:5: stages[0].bases[1]: M9, want the name of a bdev or stage"},
		{"name taken by a bdev", "  - {name: M0, service: passthru, base: M1}\n",
			"topo.yaml:5: stages[0].name: M0, want a name no other bdev or stage has (bdevs[0] at line 2 has it)"},
		{"cycle", "  - {name: A, service: passthru, base: B}\n  - {name: B, service: passthru, base: A}\n",
			"topo.yaml:6: stages[1].base: A, want a base that is not built on B (cycle: A -> B -> A)"},
		{"field of another service", "  - {name: S, service: qos, base: M0, read_latency: 1ms}\n",
			"topo.yaml:5: stages[0].read_latency: given for service qos, want no read_latency (delay has it)"},
		{"latency too long", "  - {name: S, service: delay, base: M0, write_latency: 2m}\n",
			"topo.yaml:5: stages[0].write_latency: 2m, want a duration in 0..1m such as 100us"},
		{"qos not a number", "  - {name: S, service: qos, base: M0, rw_ios_per_sec: 10k}\n",
			"topo.yaml:5: stages[0].rw_ios_per_sec: 10k, want a whole number, 0 for unlimited up to 1099511627776"},
		{"strip not a power of two", "  - {name: S, service: raid0, bases: [M0, M1], strip_size: 3KiB}\n",
			"topo.yaml:5: stages[0].strip_size: 3KiB, want a power of two in 512B..1GiB (3KiB is 3072 bytes)"},
		{"too many members", "  - {name: S, service: replica, bases: [A, B, C, D, E, F, G, H, I]}\n",
			"topo.yaml:5: stages[0].bases: 9 bases, want 1..8 bases for replica"},
		{"metadata missing", "  - {name: S, service: replica, bases: [M0, M1], metadata: MD}\n",
			"topo.yaml:5: stages[0].metadata: MD, want the name of a bdev or stage"},
		{"metadata is a member", "  - {name: S, service: replica, bases: [M0, M1], metadata: M1}\n",
			"topo.yaml:5: stages[0].metadata: M1, want a bdev that is not also a member (bases[1])"},
		{"region too small", "  - {name: S, service: replica, bases: [M0, M1], region_size: 512}\n",
			"topo.yaml:5: stages[0].region_size: 512, want a power of two in 4KiB..1GiB"},
		{"key file missing", "  - {name: S, service: crypto, base: M0}\n",
			"topo.yaml:5: stages[0].key_file: missing, want an absolute path of a key file (hex key then key2, mode 0600)"},
		{"key file relative", "  - {name: S, service: crypto, base: M0, key_file: k.key}\n",
			"topo.yaml:5: stages[0].key_file: k.key, want an absolute path of a key file of at most 4095 printable bytes"},
		{"one key two files", "  - {name: S, service: crypto, base: M0, key_file: /a, key_name: k}\n  - {name: T, service: crypto, base: M1, key_file: /b, key_name: k}\n",
			"topo.yaml:6: stages[1].key_file: /b, want the file key k was given before (/a): one key, one file"},
		{"convert not a bool", "  - {name: S, service: crypto, base: M0, key_file: /a, convert: yes}\n",
			"topo.yaml:5: stages[0].convert: yes, want true or false"},
		{"convert rate alone", "  - {name: S, service: crypto, base: M0, key_file: /a, convert_rate: 1MiB}\n",
			"topo.yaml:5: stages[0].convert_rate: given without convert: true, want convert: true, or no convert_rate"},
		{"crypto metadata without convert", "  - {name: S, service: crypto, base: M0, key_file: /a, metadata: M1}\n",
			"topo.yaml:5: stages[0].metadata: given without convert: true, want convert: true (it keeps the conversion's journal and record), or no metadata"},
		{"crypto metadata is the base", "  - {name: S, service: crypto, base: M0, key_file: /a, convert: true, metadata: M0}\n",
			"topo.yaml:5: stages[0].metadata: M0, want a bdev that is not also the base"},
		{"crypto metadata missing", "  - {name: S, service: crypto, base: M0, key_file: /a, convert: true, metadata: MD}\n",
			"topo.yaml:5: stages[0].metadata: MD, want the name of a bdev or stage"},
		{"metadata for qos", "  - {name: S, service: qos, base: M0, metadata: M1}\n",
			"topo.yaml:5: stages[0].metadata: given for service qos, want no metadata (replica and crypto have it)"},
		{"uuid shared with a bdev", "  - {name: S, service: passthru, base: M0, uuid: 5d2a7c1e-3b4f-4a8e-9c1d-2e6f7a8b9c0d}\n" +
			"  - {name: T, service: passthru, base: M1, uuid: 5d2a7c1e-3b4f-4a8e-9c1d-2e6f7a8b9c0d}\n",
			"topo.yaml:6: stages[1].uuid: 5d2a7c1e-3b4f-4a8e-9c1d-2e6f7a8b9c0d, want a UUID no other bdev or stage has (stages[0] at line 5 has it)"},
		{"unknown key", "  - {name: S, service: passthru, base: M0, colour: red}\n",
			"topo.yaml:5: stages[0].colour: unknown key, want one of " + strings.Join(stageKeys, ", ")},
		{"not a list", "  name: S\n",
			"topo.yaml:5: stages: a mapping, want a list of stages"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := errorLines(t, head+tc.stages)
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), tc.want)
			}
		})
	}
}

// TestStagesParse: a stack of every service parses, with defaults filled
// (C1), and round-trips (C3).
func TestStagesParse(t *testing.T) {
	yaml := `bdevs:
  - {name: M0, driver: malloc, size: 1MiB}
  - {name: M1, driver: malloc, size: 1MiB}
  - {name: M2, driver: malloc, size: 1MiB}
  - {name: MD, driver: malloc, size: 64KiB}
  - {name: M3, driver: malloc, size: 4MiB}
  - {name: MD3, driver: malloc, size: 2MiB}
stages:
  - {name: C, service: crypto, base: Q, key_file: /etc/k}
  - {name: V, service: crypto, base: M3, key_file: /etc/k, key_name: C, convert: true, metadata: MD3, convert_rate: 8MiB}
  - {name: Q, service: qos, base: D, rw_ios_per_sec: 1000, w_mbytes_per_sec: 10}
  - {name: D, service: delay, base: E, read_latency: 10us, p99_write_latency: 1ms}
  - {name: E, service: error, base: R}
  - {name: R, service: replica, bases: [S, P, M2], metadata: MD, rebuild_rate: 10MiB}
  - {name: S, service: raid0, bases: [M0]}
  - {name: P, service: concat, bases: [M1]}
`
	top, err := ParseFor("topo.yaml", []byte(yaml), testMachine)
	if err != nil {
		t.Fatal(err)
	}
	st := top.Stages
	if len(st) != 8 || st[0].KeyName != "C" || st[6].StripSize != StripSizeDefault || st[7].StripSize != 0 ||
		st[5].RegionSize != RegionSizeDefault || st[3].ReadLatency != 10*time.Microsecond || st[2].IOPS != 1000 ||
		!slices.Equal(st[5].Bases, []string{"S", "P", "M2"}) || st[1].Metadata != "MD3" || !st[1].Convert ||
		st[1].ConvertRate != 8<<20 {
		t.Fatalf("stages %+v", st)
	}
	saved, err := Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("saved.yaml", saved)
	if err != nil || !sameTopology(top, back) {
		t.Fatalf("round trip: %v\n%s", err, saved)
	}
	again, _ := Marshal(back)
	if string(again) != string(saved) {
		t.Fatalf("Marshal is not stable:\n%s\n---\n%s", saved, again)
	}
}

// TestStagesSection: an empty section is no stages.
func TestStagesSection(t *testing.T) {
	for _, body := range []string{"", " []"} {
		top, err := Parse("topo.yaml", []byte("stages:"+body+"\n"))
		if err != nil || top.Stages != nil {
			t.Errorf("stages:%s: %v %+v", body, err, top)
		}
	}
}

// TestStagesBuiltInCode: Validate applies the same rules to a Topology
// built in code, where no file says which fields were given.
func TestStagesBuiltInCode(t *testing.T) {
	top := &Topology{Bdevs: []Bdev{{Name: "M0", Driver: DriverMalloc, Size: 1 << 20}},
		Stages: []Stage{{Name: "S", Service: ServiceQoS, Bases: []string{"M0"}, ReadLatency: time.Millisecond}}}
	err := top.Validate(testMachine)
	if err == nil || err.Error() != "stages[0].read_latency: given for service qos, want no read_latency (delay has it)" {
		t.Fatalf("got %v", err)
	}
	top.Stages[0].ReadLatency = 0
	if err := top.Validate(testMachine); err != nil {
		t.Fatal(err)
	}
}

// TestTargetsExportStages: a namespace or LUN may sit on a stage, which is a
// block device like a bdev; a name that is neither is still refused.
func TestTargetsExportStages(t *testing.T) {
	const topo = `bdevs:
  - {name: M0, driver: malloc, size: 4MiB}
stages:
  - {name: P0, service: passthru, base: M0}
targets:
  iscsi:
    portal_groups: [{tag: 1, portals: ["127.0.0.1:3260"]}]
    initiator_groups: [{tag: 1, initiators: [ANY], netmasks: [ANY]}]
    target_nodes:
      - {name: disk0, luns: [{lun: 0, bdev: P0}], maps: [{portal_group: 1, initiator_group: 1}]}
  nvmf:
    subsystems:
      - nqn: nqn.2016-06.io.sluice:cnode1
        allow_any_host: true
        listeners: [{transport: tcp, address: 127.0.0.1, port: 4420}]
        namespaces: [{nsid: 1, bdev: P0}]
`
	if _, err := Parse("topo.yaml", []byte(topo)); err != nil {
		t.Fatalf("a stage exported as LUN and namespace: %v", err)
	}
	_, err := Parse("topo.yaml", []byte(strings.ReplaceAll(topo, "bdev: P0", "bdev: P9")))
	if err == nil || !strings.Contains(err.Error(), "P9, want the name of a bdev or stage") {
		t.Fatalf("unknown export name: %v", err)
	}
}
