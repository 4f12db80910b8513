package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/docker/cli/opts"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// containerOpsCommands are pause, unpause, top, stats and update, added
// both at the top level and under "berth container".
func containerOpsCommands(a *app) []*cobra.Command {
	return []*cobra.Command{
		newPauseCommand(a),
		newUnpauseCommand(a),
		newTopCommand(a),
		newStatsCommand(a),
		newUpdateCommand(a),
	}
}

// newPauseCommand is `berth pause`.
func newPauseCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER [CONTAINER...]",
		Short: "Pause all processes within one or more containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd.Context(), a.out, args, func(ctx context.Context, name string) error {
				_, err := a.client().ContainerPause(ctx, name, client.ContainerPauseOptions{})
				return err
			})
		},
		Annotations:           map[string]string{annotationAliases: "berth container pause, berth pause"},
		DisableFlagsInUseLine: true,
	}
}

// newUnpauseCommand is `berth unpause`.
func newUnpauseCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "unpause CONTAINER [CONTAINER...]",
		Short: "Unpause all processes within one or more containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd.Context(), a.out, args, func(ctx context.Context, name string) error {
				_, err := a.client().ContainerUnpause(ctx, name, client.ContainerUnpauseOptions{})
				return err
			})
		},
		Annotations:           map[string]string{annotationAliases: "berth container unpause, berth unpause"},
		DisableFlagsInUseLine: true,
	}
}

// newTopCommand is `berth top CONTAINER [ps OPTIONS]`: everything after
// the container goes to ps, flags included.
func newTopCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			top, err := a.client().ContainerTop(cmd.Context(), args[0], client.ContainerTopOptions{Arguments: args[1:]})
			if err != nil {
				return err
			}
			return writeTop(a.out, top.Titles, top.Processes)
		},
		Annotations:           map[string]string{annotationAliases: "berth container top, berth top"},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// writeTop aligns ps's columns as docker top does (wider cells than the
// listings: minimum width 20).
func writeTop(out io.Writer, titles []string, procs [][]string) error {
	w := tabwriter.NewWriter(out, 20, 1, 3, ' ', 0)
	fmt.Fprintln(w, strings.Join(titles, "\t"))
	for _, p := range procs {
		fmt.Fprintln(w, strings.Join(p, "\t"))
	}
	return w.Flush()
}

type updateOptions struct {
	blkioWeight        uint16
	cpuPeriod          int64
	cpuQuota           int64
	cpuRealtimePeriod  int64
	cpuRealtimeRuntime int64
	cpusetCpus         string
	cpusetMems         string
	cpuShares          int64
	memory             opts.MemBytes
	memoryReservation  opts.MemBytes
	memorySwap         opts.MemSwapBytes
	restartPolicy      string
	pidsLimit          int64
	cpus               opts.NanoCPUs
	kernelMemory       opts.MemBytes
}

// newUpdateCommand is `berth update`: only the flags given change.
func newUpdateCommand(a *app) *cobra.Command {
	var o updateOptions
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().NFlag() == 0 {
				return errors.New("you must provide one or more flags when using this command")
			}
			if err := checkFlagVersions(cmd.Context(), cmd, a); err != nil {
				return err
			}
			return runUpdate(cmd.Context(), a, o, args)
		},
		Annotations:           map[string]string{annotationAliases: "berth container update, berth update"},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.Uint16Var(&o.blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	fs.Int64Var(&o.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fs.Int64Var(&o.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fs.Int64Var(&o.cpuRealtimePeriod, "cpu-rt-period", 0, "Limit the CPU real-time period in microseconds")
	_ = fs.SetAnnotation("cpu-rt-period", annotationMinAPI, []string{"1.25"})
	fs.Int64Var(&o.cpuRealtimeRuntime, "cpu-rt-runtime", 0, "Limit the CPU real-time runtime in microseconds")
	_ = fs.SetAnnotation("cpu-rt-runtime", annotationMinAPI, []string{"1.25"})
	fs.StringVar(&o.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fs.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.VarP(&o.memory, "memory", "m", "Memory limit")
	fs.Var(&o.memoryReservation, "memory-reservation", "Memory soft limit")
	fs.Var(&o.memorySwap, "memory-swap", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
	fs.StringVar(&o.restartPolicy, "restart", "", "Restart policy to apply when a container exits")
	fs.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	_ = fs.SetAnnotation("pids-limit", annotationMinAPI, []string{"1.40"})
	fs.Var(&o.cpus, "cpus", "Number of CPUs")
	_ = fs.SetAnnotation("cpus", annotationMinAPI, []string{"1.29"})
	fs.Var(&o.kernelMemory, "kernel-memory", "Kernel memory limit (deprecated)")
	_ = fs.MarkDeprecated("kernel-memory", "and no longer supported by the kernel")
	return cmd
}

func runUpdate(ctx context.Context, a *app, o updateOptions, names []string) error {
	var policy container.RestartPolicy
	if o.restartPolicy != "" {
		p, err := opts.ParseRestartPolicy(o.restartPolicy)
		if err != nil {
			return err
		}
		policy = p
	}
	var pids *int64
	if o.pidsLimit != 0 {
		pids = &o.pidsLimit
	}
	upd := client.ContainerUpdateOptions{
		Resources: &container.Resources{
			BlkioWeight:        o.blkioWeight,
			CpusetCpus:         o.cpusetCpus,
			CpusetMems:         o.cpusetMems,
			CPUShares:          o.cpuShares,
			Memory:             o.memory.Value(),
			MemoryReservation:  o.memoryReservation.Value(),
			MemorySwap:         o.memorySwap.Value(),
			CPUPeriod:          o.cpuPeriod,
			CPUQuota:           o.cpuQuota,
			CPURealtimePeriod:  o.cpuRealtimePeriod,
			CPURealtimeRuntime: o.cpuRealtimeRuntime,
			NanoCPUs:           o.cpus.Value(),
			PidsLimit:          pids,
		},
		RestartPolicy: &policy,
	}
	// The daemon's warnings come after the names, all at once.
	var warns []string
	err := eachContainer(ctx, a.out, names, func(ctx context.Context, name string) error {
		r, err := a.client().ContainerUpdate(ctx, name, upd)
		warns = append(warns, r.Warnings...)
		return err
	})
	if len(warns) > 0 {
		fmt.Fprintln(a.out, strings.Join(warns, "\n"))
	}
	return err
}

type statsOptions struct {
	all      bool
	noStream bool
	noTrunc  bool
	format   string
}

// newStatsCommand is `berth stats`: a live table of resource usage (or
// one snapshot with --no-stream) of the containers named, or of every
// running one (every one with --all), following starts and removals.
func newStatsCommand(a *app) *cobra.Command {
	var o statsOptions
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStats(cmd.Context(), a, o, args)
		},
		Annotations:           map[string]string{annotationAliases: "berth container stats, berth stats"},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.BoolVarP(&o.all, "all", "a", false, "Show all containers (default shows just running)")
	fs.BoolVar(&o.noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	fs.BoolVar(&o.noTrunc, "no-trunc", false, "Do not truncate output")
	fs.StringVar(&o.format, "format", "", formatHelp)
	return cmd
}

// defaultStatsFormat is docker's stats table on Linux.
const defaultStatsFormat = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

var statsHeader = map[string]string{
	"Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID", "CPUPerc": "CPU %",
	"MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

// statsEntry is what the table shows of one container.
type statsEntry struct {
	container string // as named on the command line, or the ID
	name, id  string
	cpu       float64
	mem       float64
	memLimit  float64
	memPerc   float64
	netRx     float64
	netTx     float64
	blkRead   float64
	blkWrite  float64
	pids      uint64
	invalid   bool
}

// ctrStats is the live entry of one container, updated by its collector.
type ctrStats struct {
	ref string // as named on the command line, or the ID

	mu    sync.RWMutex
	entry statsEntry
	err   error
}

func (s *ctrStats) set(e statsEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entry = e
}

func (s *ctrStats) setError(err error, reset bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
	if err != nil {
		s.entry.invalid = true
	}
	if reset {
		s.entry = statsEntry{name: s.entry.name, id: s.entry.id, invalid: true}
	}
}

func (s *ctrStats) get() (statsEntry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.entry
	e.container = s.ref
	return e, s.err
}

// statsSet is the containers shown, in the order they came.
type statsSet struct {
	mu sync.RWMutex
	cs []*ctrStats
}

// add starts tracking ref unless it is already.
func (s *statsSet) add(ref string) (*ctrStats, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.cs {
		if c.ref == ref {
			return c, false
		}
	}
	c := &ctrStats{ref: ref}
	s.cs = append(s.cs, c)
	return c, true
}

func (s *statsSet) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, c := range s.cs {
		if c.ref == id {
			s.cs = append(s.cs[:i], s.cs[i+1:]...)
			return
		}
	}
}

func (s *statsSet) snapshot() []*ctrStats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]*ctrStats(nil), s.cs...)
}

func runStats(ctx context.Context, a *app, o statsOptions, names []string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var set statsSet
	var firsts sync.WaitGroup
	asyncErr := make(chan error, 4)
	start := func(ref string) {
		if s, ok := set.add(ref); ok {
			firsts.Add(1)
			go collectStats(ctx, a, s, !o.noStream, &firsts)
		}
	}
	showAll := len(names) == 0
	if showAll {
		// Subscribe before listing, so no start in between is missed.
		f := make(client.Filters).Add("type", string(events.ContainerEventType))
		res := a.client().Events(ctx, client.EventsListOptions{Filters: f})
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case err := <-res.Err:
					select {
					case asyncErr <- err:
					default:
					}
					return
				case e := <-res.Messages:
					switch {
					case e.Action == events.ActionStart || (o.all && e.Action == events.ActionCreate):
						start(e.Actor.ID)
					case e.Action == events.ActionDestroy || (!o.all && e.Action == events.ActionDie):
						set.remove(e.Actor.ID)
					}
				}
			}
		}()
		list, err := a.client().ContainerList(ctx, client.ContainerListOptions{All: o.all})
		if err != nil {
			return err
		}
		for _, c := range list.Items {
			start(c.ID)
		}
		firsts.Wait()
	} else {
		for _, n := range names {
			start(n)
		}
		firsts.Wait()
		var errs []error
		for _, s := range set.snapshot() {
			if _, err := s.get(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}

	format := outputFormat(o.format)
	if o.format == "" || o.format == tableFormatKey {
		format = defaultStatsFormat
	}
	render := func() ([]byte, error) {
		var buf bytes.Buffer
		lw, err := newListWriter(&buf, format)
		if err != nil {
			return nil, err
		}
		for _, s := range set.snapshot() {
			e, _ := s.get()
			if err := lw.row(&statsRow{e: e, trunc: !o.noTrunc}); err != nil {
				return nil, err
			}
		}
		if err := lw.flush(statsHeader); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	if o.noStream {
		if len(set.snapshot()) == 0 {
			return nil
		}
		b, err := render()
		if err != nil {
			return err
		}
		_, err = a.out.Write(b)
		return err
	}
	ticker := time.NewTicker(500 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			if len(set.snapshot()) == 0 && !showAll {
				_, _ = io.WriteString(a.out, "\033[H\033[J")
				return nil
			}
			b, err := render()
			if err != nil {
				return err
			}
			// Redraw in place: home, each line cleared to its end,
			// then whatever is left below cleared.
			var frame bytes.Buffer
			frame.WriteString("\033[H")
			for _, line := range bytes.Split(b, []byte("\n")) {
				frame.Write(line)
				frame.WriteString("\033[K\n")
			}
			frame.WriteString("\033[J")
			if _, err := a.out.Write(frame.Bytes()); err != nil {
				return err
			}
		case err := <-asyncErr:
			if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// collectStats reads the stats of one container into s: one sample, or
// one a second while streaming. A container that sends nothing for two
// seconds shows as "--". first is told once the first sample (or error)
// is in.
func collectStats(ctx context.Context, a *app, s *ctrStats, stream bool, first *sync.WaitGroup) {
	var once sync.Once
	done := func() { once.Do(first.Done) }
	defer done()
	res, err := a.client().ContainerStats(ctx, s.ref, client.ContainerStatsOptions{
		Stream: stream, IncludePreviousSample: !stream,
	})
	if err != nil {
		s.setError(err, false)
		return
	}
	samples := make(chan error, 1)
	go func() {
		defer res.Body.Close()
		dec := json.NewDecoder(res.Body)
		for ctx.Err() == nil {
			var v container.StatsResponse
			if err := dec.Decode(&v); err != nil {
				dec = json.NewDecoder(io.MultiReader(dec.Buffered(), res.Body))
				samples <- err
				if err == io.EOF {
					return
				}
				time.Sleep(100 * time.Millisecond)
				continue
			}
			s.set(entryOf(&v))
			samples <- nil
			if !stream {
				return
			}
		}
	}()
	for {
		select {
		case <-time.After(2 * time.Second):
			s.setError(errors.New("timeout waiting for stats"), true)
			done()
		case err := <-samples:
			s.setError(err, false)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				continue
			}
			done()
		case <-ctx.Done():
			s.setError(ctx.Err(), false)
			return
		}
		if !stream {
			return
		}
	}
}

// entryOf computes the table's figures from a sample as the docker CLI
// does on Linux: CPU % from the sample and the one before it, memory
// without the inactive page cache.
func entryOf(v *container.StatsResponse) statsEntry {
	e := statsEntry{name: v.Name, id: v.ID}
	pre, cur := v.PreCPUStats, v.CPUStats
	cpuDelta := float64(cur.CPUUsage.TotalUsage) - float64(pre.CPUUsage.TotalUsage)
	sysDelta := float64(cur.SystemUsage) - float64(pre.SystemUsage)
	ncpu := float64(cur.OnlineCPUs)
	if ncpu == 0 {
		ncpu = float64(len(cur.CPUUsage.PercpuUsage))
	}
	if sysDelta > 0 && cpuDelta > 0 {
		e.cpu = cpuDelta / sysDelta * ncpu * 100
	}
	mem := v.MemoryStats
	e.mem = float64(mem.Usage)
	if x, v1 := mem.Stats["total_inactive_file"]; v1 && x < mem.Usage {
		e.mem = float64(mem.Usage - x)
	} else if x := mem.Stats["inactive_file"]; x < mem.Usage {
		e.mem = float64(mem.Usage - x)
	}
	e.memLimit = float64(mem.Limit)
	if mem.Limit != 0 {
		e.memPerc = e.mem / e.memLimit * 100
	}
	for _, n := range v.Networks {
		e.netRx += float64(n.RxBytes)
		e.netTx += float64(n.TxBytes)
	}
	for _, b := range v.BlkioStats.IoServiceBytesRecursive {
		if b.Op == "" {
			continue
		}
		switch b.Op[0] {
		case 'r', 'R':
			e.blkRead += float64(b.Value)
		case 'w', 'W':
			e.blkWrite += float64(b.Value)
		}
	}
	e.pids = v.PidsStats.Current
	return e
}

// statsRow is one row of the stats table: the template placeholders.
type statsRow struct {
	e     statsEntry
	trunc bool
}

func (r *statsRow) MarshalJSON() ([]byte, error) { return marshalMethods(r) }

func (r *statsRow) Container() string { return r.e.container }

func (r *statsRow) Name() string {
	if n := strings.TrimPrefix(r.e.name, "/"); n != "" {
		return n
	}
	return "--"
}

func (r *statsRow) ID() string {
	if r.trunc {
		return truncateID(r.e.id)
	}
	return r.e.id
}

func (r *statsRow) CPUPerc() string {
	if r.e.invalid {
		return "--"
	}
	return statsPercent(r.e.cpu)
}

func (r *statsRow) MemUsage() string {
	if r.e.invalid {
		return "-- / --"
	}
	return units.BytesSize(r.e.mem) + " / " + units.BytesSize(r.e.memLimit)
}

func (r *statsRow) MemPerc() string {
	if r.e.invalid {
		return "--"
	}
	return statsPercent(r.e.memPerc)
}

func (r *statsRow) NetIO() string {
	if r.e.invalid {
		return "--"
	}
	return units.HumanSizeWithPrecision(r.e.netRx, 3) + " / " + units.HumanSizeWithPrecision(r.e.netTx, 3)
}

func (r *statsRow) BlockIO() string {
	if r.e.invalid {
		return "--"
	}
	return units.HumanSizeWithPrecision(r.e.blkRead, 3) + " / " + units.HumanSizeWithPrecision(r.e.blkWrite, 3)
}

func (r *statsRow) PIDs() string {
	if r.e.invalid {
		return "--"
	}
	return strconv.FormatUint(r.e.pids, 10)
}

func statsPercent(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "%" }
