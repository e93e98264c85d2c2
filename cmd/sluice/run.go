package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/sluice-storage/sluice/actors"
	"github.com/sluice-storage/sluice/conf"
	"github.com/sluice-storage/sluice/drivers/nvmf"
	"github.com/sluice-storage/sluice/internal/jsonrpc"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"golang.org/x/sys/unix"
)

const (
	defaultRPCSocket = "/var/tmp/sluice.sock"
	// shutdownTimeoutDefault bounds a clean stop: long enough to complete
	// in-flight I/O and flush files, short enough for a service manager.
	shutdownTimeoutDefault = 10 * time.Second
)

func runCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "", "topology `FILE` (default: the embedded default topology)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	stopTimeout := fs.Duration("shutdown-timeout", shutdownTimeoutDefault, "bound on a clean stop")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: sluice run [-c FILE] [options]\n\n"+
			"Validates the topology, starts reactors on its cores, creates what it declares,\n"+
			"and serves until SIGINT or SIGTERM, then stops cleanly within -shutdown-timeout.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "sluice run: %v\n", err)
		return 2
	}
	top, name, err := loadTopology(*file)
	if err != nil {
		var list *conf.Errors
		if errors.As(err, &list) {
			fmt.Fprintln(stderr, list.Error())
		} else {
			fmt.Fprintf(stderr, "sluice run: %v\n", err)
		}
		return 1
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	d, err := startDaemon(top, log)
	if err != nil {
		log.Error("start failed", "topology", name, "err", err)
		return 1
	}
	log.Info("sluice ready", "version", versionString(), "topology", name, "pid", os.Getpid(),
		"reactors", d.set.Len(), "rpc", d.rpcPath, "debug", d.debugAddr())
	sig := <-sigs
	log.Info("stopping", "signal", sig.String(), "limit", stopTimeout.String())
	start := time.Now()
	if err := d.stop(*stopTimeout); err != nil {
		log.Error("unclean stop", "err", err, "after", time.Since(start).String())
		return 1
	}
	log.Info("stopped", "took", time.Since(start).String(), "limit", stopTimeout.String())
	return 0
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// loadTopology reads and validates the file, or the embedded default, with
// every problem reported at once.
func loadTopology(file string) (*conf.Topology, string, error) {
	if file == "" {
		top := conf.Default()
		if err := top.Validate(conf.HostMachine()); err != nil {
			return nil, "", err
		}
		return top, "default.yaml (embedded)", nil
	}
	top, err := conf.LoadFor(file, conf.HostMachine())
	return top, file, err
}

// daemon is one running sluice: what startDaemon made, stopped in reverse.
type daemon struct {
	log   *slog.Logger
	top   *conf.Topology
	set   *reactors.Set
	sys   *actors.System
	debug *actors.Debug

	rpc         *jsonrpc.Server
	rpcPath     string
	rpcListener net.Listener
	rpcLock     *os.File

	http          *http.Server
	debugListener net.Listener

	// parts started after the actor system, in order; stopped in reverse
	// before it (targets before the bdevs they serve).
	parts []part

	bdevs   *bdev.Registry // set by startBdevs
	nvmf    *nvmf.Manager  // remote NVMe/TCP controllers as bdevs; set by startBdevs
	started time.Time
	// lock: the uring bdevs' file names for bdev_get_bdevs; RPC handlers
	// run on the RPC server's goroutines, never on a reactor.
	bdevPathsMu sync.Mutex
	bdevPaths   map[string]string
}

// part is a piece of the daemon that startParts starts: the bdevs, each
// target. stop refuses new work, completes or aborts what is in flight,
// flushes and closes, within the deadline.
type part interface {
	name() string
	stop(deadline time.Time) error
}

// starters start the parts a topology declares, in dependency order:
// back ends, then stages, then targets. Each is explicit here (no init()
// registration); each returns nil when the topology declares nothing of
// its kind.
var starters = []func(d *daemon) (part, error){startBdevs, startStages, startNVMf, startISCSI}

// startDaemon claims the RPC socket and debug address first (so a second
// daemon is refused before it starts anything), then starts the reactors,
// the actor system and the parts, then serves.
func startDaemon(top *conf.Topology, log *slog.Logger) (_ *daemon, err error) {
	d := &daemon{log: log, top: top, started: time.Now()}
	defer func() {
		if err != nil {
			d.stop(shutdownTimeoutDefault)
		}
	}()
	if top.RPC.Listen != "" {
		if err := d.claimRPCSocket(top.RPC.Listen); err != nil {
			return d, err
		}
	}
	if top.Debug.Listen != "" {
		l, err := net.Listen("tcp", top.Debug.Listen)
		if err != nil {
			if errors.Is(err, unix.EADDRINUSE) {
				return d, fmt.Errorf("debug.listen %s is in use (another sluice daemon?): "+
					"stop it, or set debug.listen to another address or \"\"", top.Debug.Listen)
			}
			return d, fmt.Errorf("debug.listen %s: %w", top.Debug.Listen, err)
		}
		d.debugListener = l
	}

	mode := reactors.ModeAdaptive
	if top.Reactors.Mode == conf.ModePoll {
		mode = reactors.ModePoll
	}
	d.set, err = reactors.Start(top.Reactors.CoresOn(conf.HostMachine()), reactors.Options{
		Mode: mode, IdleAfter: top.Reactors.IdleAfter, Logger: log,
	})
	if err != nil {
		return d, err
	}
	d.sys = actors.NewSystem(d.set, actors.Options{Logger: log})
	d.debug = actors.NewDebug(d.sys)

	d.bdevPaths = map[string]string{}
	for _, b := range top.Bdevs {
		if b.Path != "" {
			d.bdevPaths[b.Name] = b.Path
		}
	}
	for _, start := range starters {
		p, err := start(d)
		if err != nil {
			return d, err
		}
		if p != nil {
			d.parts = append(d.parts, p)
		}
	}
	d.rpc = jsonrpc.NewServer(log)
	if err := registerMethods(d); err != nil {
		return d, err
	}
	if d.rpcListener != nil {
		go d.rpc.Serve(d.rpcListener)
	}
	if d.debugListener != nil {
		d.http = &http.Server{Handler: d.debug.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go d.http.Serve(d.debugListener)
	}
	return d, nil
}

func (d *daemon) debugAddr() string {
	if d.debugListener == nil {
		return ""
	}
	return d.debugListener.Addr().String()
}

// claimRPCSocket takes the socket's lock file (held for the daemon's life;
// the kernel drops it when the process dies, even by kill -9), removes a
// stale socket a dead daemon left, and listens with mode 0600.
func (d *daemon) claimRPCSocket(path string) error {
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("rpc.listen %s: lock file: %w", path, err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("rpc.listen %s: another sluice daemon is running on this socket "+
				"(it holds %s.lock); stop it, or set rpc.listen to another path", path, path)
		}
		return fmt.Errorf("rpc.listen %s: lock %s.lock: %w", path, path, err)
	}
	d.rpcLock = lock
	if _, err := os.Lstat(path); err == nil {
		// We hold the lock, so whoever made this socket is gone.
		d.log.Warn("replacing a stale RPC socket left by a daemon that did not stop cleanly", "path", path)
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("rpc.listen %s: remove stale socket: %w", path, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("rpc.listen %s: %w", path, err)
	}
	old := unix.Umask(0o177) // the socket is born 0600: no window where others may connect
	l, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return fmt.Errorf("rpc.listen %s: %w", path, err)
	}
	d.rpcPath = path
	d.rpcListener = l
	return nil
}

// stop refuses new work (RPC and debug listeners closed), stops the parts
// and the actors, then the reactors, all within timeout.
func (d *daemon) stop(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var errs []error
	if d.rpcListener != nil {
		d.rpcListener.Close() // also unlinks the socket
	}
	if d.rpc != nil {
		d.rpc.Close()
	}
	if d.http != nil {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		if err := d.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("debug endpoint: %w", err))
		}
		cancel()
	} else if d.debugListener != nil {
		d.debugListener.Close()
	}
	for i := len(d.parts) - 1; i >= 0; i-- {
		if err := d.parts[i].stop(deadline); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.parts[i].name(), err))
		}
	}
	if d.sys != nil {
		if err := d.sys.Shutdown(time.Until(deadline)); err != nil {
			errs = append(errs, err)
		}
	}
	if d.set != nil {
		if err := d.set.Stop(max(time.Until(deadline), time.Millisecond)); err != nil {
			errs = append(errs, err)
		}
	}
	if d.rpcLock != nil {
		os.Remove(d.rpcLock.Name())
		d.rpcLock.Close()
	}
	return errors.Join(errs...)
}
