// Command berthd is the berth daemon: it serves the Docker Engine API over
// the sockets given with -H, backed by one content-addressed store.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berth-dev/berth/cas"
	"github.com/berth-dev/berth/chain"
	"github.com/berth-dev/berth/cli"
	"github.com/berth-dev/berth/httpapi"
	"github.com/berth-dev/berth/mount"
	"github.com/berth-dev/berth/pull"
	"github.com/berth-dev/berth/run"
	"github.com/moby/moby/api/types/container"
)

// version is set at link time by release builds.
var version = "0.1.0-dev"

func main() {
	// berthd shim … is the per-container shim (package run), started by
	// berthd itself: it must not parse daemon flags.
	if len(os.Args) > 1 && os.Args[1] == "shim" {
		os.Exit(run.ShimMain(os.Args[2:]))
	}
	os.Exit(daemonMain(os.Args[1:]))
}

func daemonMain(args []string) int {
	cfg, err := cli.LoadDaemonConfig(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "berthd:", err)
		return 1
	}
	switch {
	case cfg.ShowHelp:
		fmt.Printf("Usage:\tberthd [OPTIONS]\n\nA self-sufficient runtime for containers.\n\nOptions:\n%s", cli.NewDaemonFlagSet(cli.NewDaemonConfig()).FlagUsages())
		return 0
	case cfg.ShowVersion:
		fmt.Printf("berthd version %s\n", version)
		return 0
	case cfg.Validate:
		fmt.Println("configuration OK")
		return 0
	}
	level := new(slog.LevelVar)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	setLevel(level, cfg)
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	if err := serve(cfg, log, level); err != nil {
		log.Error("berthd failed", "err", err)
		return 1
	}
	return 0
}

func setLevel(level *slog.LevelVar, cfg *cli.DaemonConfig) {
	l := slog.LevelInfo
	switch cfg.EffectiveLogLevel() {
	case "debug", "trace":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error", "fatal", "panic":
		l = slog.LevelError
	}
	level.Set(l)
}

func serve(cfg *cli.DaemonConfig, log *slog.Logger, level *slog.LevelVar) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	releasePid, err := cli.WritePidfile(cfg.Pidfile)
	if err != nil {
		return err
	}
	defer releasePid()
	for _, d := range []string{cfg.DataRoot, cfg.ExecRoot} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	tlsConf, err := cfg.ServerTLSConfig()
	if err != nil {
		return err
	}

	store, err := cas.Open(ctx, cfg.DataRoot)
	if err != nil {
		return err
	}
	defer store.Close()
	drv, err := mount.New(ctx, cfg.StorageDriver, filepath.Join(cfg.DataRoot, "layers"))
	if err != nil {
		return fmt.Errorf("storage driver: %w", err)
	}
	images, err := chain.Open(ctx, store, drv, chain.WithDeviceNodes(os.Geteuid() == 0))
	if err != nil {
		return err
	}

	puller := pull.New(images, pullConfig(cfg), pull.WithLogger(log))
	events := httpapi.NewEvents(httpapi.DefaultEventsBuffer)
	containers, err := run.New(ctx, runConfig(cfg, images, events))
	if err != nil {
		return err
	}
	images.SetImageUsers(containers.ImageUsers)
	d := &daemon{images: images, driver: drv, version: version, puller: puller, containers: containers}
	d.cfg.Store(cfg)
	id, err := daemonID(cfg.DataRoot)
	if err != nil {
		return err
	}
	d.id = id

	srv := httpapi.New(httpapi.Options{
		Version:    version,
		CORSHeader: cfg.APICorsHeader,
		Logger:     log,
	}, httpapi.Backends{System: d, Images: images, DiskUsage: d, Events: events, Puller: puller,
		Containers: containers, Volumes: containers.Volumes()})

	listeners, err := httpapi.Listen(ctx, cfg.Hosts, tlsConf, cfg.Group)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(listeners) }()
	idle := time.NewTicker(idleTick)
	defer idle.Stop()
	go returnMemoryWhenIdle(ctx, srv, idle.C, debug.FreeOSMemory)
	log.Info("berthd started", "version", version, "hosts", cfg.Hosts, "data-root", cfg.DataRoot, "driver", drv.Name())

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	for {
		select {
		case err := <-served:
			if err != nil && !errors.Is(err, errServerClosed) {
				return err
			}
			return nil
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				d.reload(log, level)
				continue
			}
			log.Info("shutting down", "signal", sig.String())
			err := shutdown(srv, d.config(), sigs, log)
			// Without live-restore the containers stop with the daemon.
			stopCtx, cancel := context.WithTimeout(context.Background(), time.Duration(d.config().ShutdownTimeout+15)*time.Second)
			defer cancel()
			if serr := containers.Shutdown(stopCtx); serr != nil {
				log.Error("stopping containers", "err", serr)
			}
			return err
		}
	}
}

var errServerClosed = errors.New("http: Server closed")

// idleTick is how often returnMemoryWhenIdle looks; memory goes back one
// to two ticks after the last request ended.
const idleTick = 500 * time.Millisecond

// activityCounter is what returnMemoryWhenIdle watches (httpapi.Server).
type activityCounter interface {
	Activity() (inflight int64, ended uint64)
}

// returnMemoryWhenIdle gives the heap a burst of work left behind (pull
// buffers, encoded listings, garbage) back to the system (release, which
// is debug.FreeOSMemory) once no request has run for a whole tick. Go's
// own scavenger returns it only slowly, and an idle daemon's footprint is
// what users see most.
func returnMemoryWhenIdle(ctx context.Context, srv activityCounter, ticks <-chan time.Time, release func()) {
	var w idleWatch
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		if w.due(srv.Activity()) {
			release()
		}
	}
}

// idleWatch decides, tick by tick, when a burst of requests is over.
type idleWatch struct {
	seen     uint64 // requests ended at the previous tick
	returned uint64 // requests ended when memory last went back
}

// due reports whether memory should go back at this tick: nothing under
// way, no request ended since the previous tick, and some since the last
// time.
func (w *idleWatch) due(inflight int64, ended uint64) bool {
	quiet := inflight == 0 && ended == w.seen
	w.seen = ended
	if quiet && ended != w.returned {
		w.returned = ended
		return true
	}
	return false
}

// shutdown stops accepting, lets streams finish for shutdown-timeout, and
// gives up at once on a second signal.
func shutdown(srv *httpapi.Server, cfg *cli.DaemonConfig, sigs <-chan os.Signal, log *slog.Logger) error {
	timeout := time.Duration(cfg.ShutdownTimeout) * time.Second
	if timeout <= 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() {
		if sig, ok := <-sigs; ok && sig != syscall.SIGHUP {
			log.Warn("second signal: forcing shutdown", "signal", sig.String())
			cancel()
		}
	}()
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// daemon holds what the API's system endpoints report and what a reload
// changes.
type daemon struct {
	cfg        atomic.Pointer[cli.DaemonConfig]
	images     *chain.Store
	driver     mount.Driver
	id         string
	version    string
	puller     *pull.Puller
	containers *run.Manager
}

// runConfig maps the daemon configuration onto the container manager's.
func runConfig(cfg *cli.DaemonConfig, images *chain.Store, events *httpapi.Events) run.Config {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	runtimes := map[string]string{"runc": runcPath(self)}
	for name, rt := range cfg.Runtimes {
		runtimes[name] = rt.Path
	}
	// The small berth-shim built beside berthd (make build) starts several
	// times faster than berthd itself in shim mode, the fallback.
	shimCmd := []string{self, "shim"}
	shimBin := filepath.Join(filepath.Dir(self), "berth-shim")
	if st, err := os.Stat(shimBin); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		shimCmd = []string{shimBin}
	}
	var ulimits []*container.Ulimit
	for _, u := range cfg.DefaultUlimits {
		ulimits = append(ulimits, &container.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	return run.Config{
		Root:           filepath.Join(cfg.DataRoot, "containers"),
		ExecRoot:       cfg.ExecRoot,
		Store:          images,
		Runtimes:       runtimes,
		DefaultRuntime: cfg.DefaultRuntime,
		CgroupParent:   cfg.CgroupParent,
		DefaultUlimits: ulimits,
		DNS:            cfg.DNS,
		DNSSearch:      cfg.DNSSearch,
		DNSOptions:     cfg.DNSOpts,
		LogDriver:      cfg.LogDriver,
		LogOpts:        cfg.LogOpts,
		LiveRestore:    cfg.LiveRestore,
		ShimCommand:    shimCmd,
		ShimSpare:      true,
		Events:         events.Publish,
	}
}

// runcPath is the runc built beside berthd (make build), else the one on
// PATH.
func runcPath(self string) string {
	p := filepath.Join(filepath.Dir(self), "runc")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath("runc"); err == nil {
		return p
	}
	return "runc"
}

func pullConfig(cfg *cli.DaemonConfig) pull.Config {
	return pull.Config{
		MaxConcurrentDownloads: cfg.MaxConcurrentDownloads,
		Mirrors:                cfg.RegistryMirrors,
		InsecureRegistries:     cfg.InsecureRegistries,
	}
}

func (d *daemon) config() *cli.DaemonConfig { return d.cfg.Load() }

// reload applies what SIGHUP may change; the rest is logged.
func (d *daemon) reload(log *slog.Logger, level *slog.LevelVar) {
	res, err := d.config().Reload()
	if err != nil {
		log.Error("reload: configuration not changed", "err", err)
		return
	}
	for _, k := range res.NotReloadable {
		log.Warn("reload: key changed in the configuration file but needs a restart", "key", k)
	}
	d.cfg.Store(res.Config)
	setLevel(level, res.Config)
	d.puller.SetConfig(pullConfig(res.Config))
	log.Info("reloaded configuration", "changed", res.Changed)
}
