// Command berthd is the berth daemon: it serves the Docker Engine API over
// the sockets given with -H, backed by one content-addressed store.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berth-dev/berth/cas"
	"github.com/berth-dev/berth/chain"
	"github.com/berth-dev/berth/cli"
	"github.com/berth-dev/berth/httpapi"
	"github.com/berth-dev/berth/mount"
	"github.com/berth-dev/berth/pull"
)

// version is set at link time by release builds.
var version = "0.1.0-dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
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
	d := &daemon{images: images, driver: drv, version: version, puller: puller}
	d.cfg.Store(cfg)
	id, err := daemonID(cfg.DataRoot)
	if err != nil {
		return err
	}
	d.id = id

	events := httpapi.NewEvents(httpapi.DefaultEventsBuffer)
	srv := httpapi.New(httpapi.Options{
		Version:    version,
		CORSHeader: cfg.APICorsHeader,
		Logger:     log,
	}, httpapi.Backends{System: d, Images: images, DiskUsage: d, Events: events, Puller: puller})

	listeners, err := httpapi.Listen(ctx, cfg.Hosts, tlsConf, cfg.Group)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(listeners) }()
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
			return shutdown(srv, d.config(), sigs, log)
		}
	}
}

var errServerClosed = errors.New("http: Server closed")

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
	cfg     atomic.Pointer[cli.DaemonConfig]
	images  *chain.Store
	driver  mount.Driver
	id      string
	version string
	puller  *pull.Puller
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
