// Package conf owns the YAML topology: the schema of the file `sluice run`
// starts from, its defaults, its validation with line-numbered errors, the
// Marshal that writes a topology back (for save_config), and the example
// files in conf/examples.
//
// conf imports nothing of ours: only the standard library, gopkg.in/yaml.v3
// and github.com/google/uuid. It runs on no reactor and starts nothing: the
// whole file is checked before anything starts. It reads the machine only in
// HostMachine; every check that depends on the machine takes a Machine, so
// tests choose the CPUs.
//
// # Schema
//
//	reactors:                  # optional
//	  cores: [0-3, 8]          # CPU ids and a-b ranges, each once; default: every CPU
//	                           # the process may run on (its affinity mask)
//	  mode: adaptive           # adaptive (default): poll while busy, sleep in epoll_wait
//	                           # when idle | poll: always busy-poll, for benchmarks
//	  idle_after: 1ms          # adaptive only: quiet time before sleeping, 10us..10s
//	bdevs:                     # optional; at most BdevsMax
//	  - name: Malloc0          # 1..64 of A-Z a-z 0-9 _ . : -, unique among bdevs and stages
//	    driver: malloc         # malloc | "null" (quoted: bare null is YAML null) | uring | nvmf
//	    block_size: 512        # power of two in 512..4096; default 512, uring 4096
//	    size: 64MiB            # or blocks: 131072; exactly one; whole blocks
//	    uuid: 5d2a7c1e-…       # optional, canonical form, not nil, unique
//	    path: /var/lib/x.img   # uring only, required there: absolute, unique
//	  - name: Nvme0            # nvmf: a remote NVMe/TCP controller; its namespaces are the
//	    driver: nvmf           # bdevs Nvme0n1, Nvme0n2… (see nvmf_bdev.go); no block_size,
//	    traddr: 192.0.2.7      # size, blocks, uuid or path; bdev_nvme_attach_controller's
//	    subnqn: nqn.…:cnode1   # trtype, adrfam, traddr, trsvcid, subnqn, hostnqn, hdgst,
//	                           # ddgst, io_queue_size, num_io_queues, reconnect_delay_sec,
//	                           # ctrlr_loss_timeout_sec, fast_io_fail_timeout_sec
//	stages:                    # optional; at most StagesMax; see stages.go, examples/<service>.yaml
//	  - name: Secret0          # one namespace with the bdevs
//	    service: crypto        # passthru | delay | error | qos | raid0 | concat | replica | crypto
//	    base: Mirror0          # or bases: [A, B] (raid0, concat 1..32; replica 1..8 members)
//	    uuid: 5d2a7c1e-…       # optional
//	    …                      # the service's own fields, and only those: delay read_latency,
//	                           # p99_read_latency, write_latency, p99_write_latency; qos
//	                           # rw_ios_per_sec, rw_mbytes_per_sec, r_mbytes_per_sec,
//	                           # w_mbytes_per_sec; raid0/concat strip_size; replica metadata,
//	                           # region_size, rebuild_rate; crypto key_file, key_name, convert,
//	                           # convert_rate
//	targets:                   # optional: the front ends
//	  nvmf: …                  # the NVMe-oF target: see nvmf.go and examples/nvmf.yaml
//	  iscsi: …                 # the iSCSI target: see iscsi.go and examples/iscsi.yaml
//	                           # (vhost: not supported yet)
//	rpc:
//	  listen: /var/tmp/sluice.sock   # unix socket, absolute, <= 107 bytes; "" disables
//	debug:
//	  listen: 127.0.0.1:9390         # host:port, host required, port 0 = any; "" disables
//
// A section written with nothing under it is an empty one. Each field is
// documented on its struct field (Topology, Reactors, Bdev, RPC, Debug);
// conf/examples has one commented file per feature, and default.yaml is
// DefaultYAML.
//
// Sizes (ParseSize): a plain integer is bytes; units are B, KiB, MiB, GiB,
// TiB, PiB, EiB (powers of 1024) and kB (or KB), MB, GB, TB, PB, EB (powers of
// 1000, as disk vendors, dd and truncate count). Case matters; a unit that
// could mean either base (K, M, g, Mi, mb, KIB…) is rejected as ambiguous,
// naming the two exact spellings. A fraction is accepted only when exact in
// bytes: 1.5GiB yes, 1.3KiB no. No size exceeds SizeMax.
//
// The file is strict: unknown keys, repeated keys, aliases, merge keys, a
// second document, values of the wrong kind, a field that does not apply
// (path on a malloc bdev, idle_after with mode poll) are all errors, never
// ignored and never clamped. Limits are named constants in limits.go, each
// with its reason.
//
// # Errors
//
// Parse, Load, ParseFor, LoadFor and Validate report every problem at once
// as *Errors, one Error per problem in file order, printed one per line as
//
//	topo.yaml:14: bdevs[2].block_size: 3000, want a power of two in 512..4096
//
// A YAML syntax error stops the parser, so it is reported alone. Past
// errorsMax problems the rest are counted, not listed.
//
// # Machine
//
// Parse and Load check everything that does not depend on the machine, so a
// file can be checked for another host. ParseFor and LoadFor (what `sluice
// run` and `sluice validate` call, with HostMachine or a Machine of their
// choosing) also check each core against Machine.CPUs, all problems in one
// report. (*Topology).Validate does the same on a Topology built in code.
//
// # Invariants
//
//   - C1. A Topology returned without error (or whose Validate returned nil)
//     has every default filled: Reactors.Mode is set; Reactors.IdleAfter is
//     set exactly when the mode is adaptive; every Bdev but an nvmf one has
//     BlockSize, Size and Blocks with Size == Blocks*BlockSize (an nvmf one
//     has none, and its Remote has TrType, TrSvcID, IOQueueSize and
//     NumIOQueues set); RPC.Listen and Debug.Listen
//     are what the file said or the defaults. The one exception is
//     Reactors.Cores, nil when the file named none (C4). Defaults are
//     filled after validation, so no default hides a problem.
//   - C2. Every reference is resolved: names are unique across bdevs (and the
//     stages that will share their namespace), every base names a bdev or
//     stage, and no stage is built on itself (checkGraph). UUIDs and uring
//     paths are unique among bdevs. The one reference left for the start to
//     resolve is a namespace of an nvmf bdev, <ctrl>n<NSID> with NSID in
//     1..NVMfNamespacesMax: how many a remote controller has is known only
//     once it connects, so `sluice run` checks them then, and no bdev or
//     stage may take such a name.
//   - C3. Parse(Marshal(t)) equals t for every t that Parse returns, and
//     Marshal of the result gives the same bytes: a saved topology loads back
//     unchanged. FuzzParse checks it on every input Parse accepts.
//   - C4. Only ParseFor, LoadFor, Validate and Reactors.CoresOn depend on the
//     machine. Reactors.Cores nil means every CPU of the machine the daemon
//     runs on; CoresOn resolves it there, and Marshal keeps it unresolved so
//     a saved file stays portable.
//   - C5. Every rejected file yields *Errors with one Error per problem, each
//     naming file, line, field path, the value as written and what is wanted.
//     A problem is reported once: a field that failed is not checked again by
//     rules that read it.
//   - C6. Parse never panics and never reads more than FileSizeMax bytes,
//     whatever the input (FuzzParse).
package conf
