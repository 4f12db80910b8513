// Command berth-bench runs berth's benchmarks (../shared/BENCH.md) and
// writes their results to BENCHMARKS.md. It is what `make bench` runs; it
// is never part of `make test`.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

// scenario is one measured thing; it appends its section to the report.
type scenario struct {
	name string
	run  func(ctx context.Context, r *report) error
}

var scenarios = []scenario{
	{"register", benchRegister},
	{"index-memory", benchIndexMemory},
	{"api", benchAPI},
	{"pull", benchPull},
	{"run", benchRun},
}

type report struct {
	sections []string
}

func (r *report) add(title, body string) {
	r.sections = append(r.sections, "## "+title+"\n\n"+strings.TrimSpace(body)+"\n")
	fmt.Printf("## %s\n%s\n\n", title, body)
}

func main() {
	out := flag.String("out", "BENCHMARKS.md", "report file")
	only := flag.String("run", "", "comma-separated scenarios (default all)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run here")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	var names []string
	if *only != "" {
		names = strings.Split(*only, ",")
	}
	r := &report{}
	for _, s := range scenarios {
		if len(names) > 0 && !slices.Contains(names, s.name) {
			continue
		}
		log.Printf("bench %s", s.name)
		if err := s.run(ctx, r); err != nil {
			pprof.StopCPUProfile()
			log.Fatalf("bench %s: %v", s.name, err)
		}
	}
	var b strings.Builder
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("Written by `make bench` (cmd/berth-bench); method in ../shared/BENCH.md.\n\n")
	fmt.Fprintf(&b, "- date: %s\n- machine: %s\n- go: %s\n\n", time.Now().UTC().Format(time.RFC3339), machine(), runtime.Version())
	for _, s := range r.sections {
		b.WriteString(s + "\n")
	}
	if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
		log.Fatal(err)
	}
}

func machine() string {
	kernel, _ := exec.Command("uname", "-r").Output()
	return fmt.Sprintf("%d cores, %s, kernel %s", runtime.NumCPU(), memTotal(), strings.TrimSpace(string(kernel)))
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "MemTotal:") {
			var kb int64
			fmt.Sscanf(strings.TrimPrefix(l, "MemTotal:"), "%d", &kb)
			return fmt.Sprintf("%.1f GiB RAM", float64(kb)/(1<<20))
		}
	}
	return "?"
}

// dropCaches makes the next read come from disk, as BENCH.md asks before
// cold runs.
func dropCaches() {
	exec.Command("sync").Run()
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func minMax(ds []time.Duration) (time.Duration, time.Duration) {
	return slices.Min(ds), slices.Max(ds)
}

// rssKB is the resident set of this process.
func rssKB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			var kb int64
			fmt.Sscanf(strings.TrimPrefix(l, "VmRSS:"), "%d", &kb)
			return kb
		}
	}
	return 0
}
