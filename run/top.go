package run

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// psArgsAssignment finds "key=PID…" in ps options: only a pid column may
// be renamed, or the PID column top filters on would be lost.
var psArgsAssignment = regexp.MustCompile(`\s+(\S*)=\s*(PID\S*)`)

// Top lists the processes of a running container as dockerd does: the
// host's ps runs with psArgs (default "-ef") and the output keeps its
// header and the rows whose PID is one of the container's (its cgroup's
// processes). Continuation rows ("-" as PID, thread lines of ps -m)
// follow the process they belong to.
func (m *Manager) Top(ctx context.Context, ref, psArgs string) (container.TopResponse, error) {
	if psArgs == "" {
		psArgs = "-ef"
	}
	for _, g := range psArgsAssignment.FindAllStringSubmatch(psArgs, -1) {
		if len(g) >= 3 && g[1] != "pid" {
			return container.TopResponse{}, invalid("specifying \"%s=%s\" is not allowed", g[1], g[2])
		}
	}
	c, err := m.lookup(ref)
	if err != nil {
		return container.TopResponse{}, err
	}
	rec := c.view()
	if err := checkRunning(rec); err != nil {
		return container.TopResponse{}, err
	}
	cg, err := m.cgroupOf(rec)
	if err != nil {
		return container.TopResponse{}, err
	}
	pids, err := cg.pids()
	if err != nil {
		return container.TopResponse{}, fmt.Errorf("list processes of %s: %w", rec.ID, err)
	}
	args := strings.Split(psArgs, " ")
	// -q limits ps to the container's processes; some options (f) do not
	// go with it, so ps runs again without it, as dockerd does.
	out, err := exec.CommandContext(ctx, "ps", append(args, psPidsArg(pids))...).Output()
	if err != nil {
		out, err = exec.CommandContext(ctx, "ps", args...).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if line, _, _ := bytes.Cut(ee.Stderr, []byte("\n")); len(line) > 0 {
					err = errors.New(string(line))
				}
			}
			return container.TopResponse{}, fmt.Errorf("ps: %w", err)
		}
	}
	procs, err := parsePSOutput(out, pids)
	if err != nil {
		return container.TopResponse{}, err
	}
	m.emit(events.ActionTop, rec, nil)
	return procs, nil
}

// psPidsArg is "-q1,2,3".
func psPidsArg(pids []int) string {
	b := []byte("-q")
	for i, p := range pids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(p), 10)
	}
	return string(b)
}

// fieldsASCII splits on ASCII white space only: ps output may hold other
// (unicode) spaces inside a command line.
func fieldsASCII(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		switch r {
		case '\t', '\n', '\f', '\r', ' ':
			return true
		}
		return false
	})
}

func parsePSOutput(out []byte, pids []int) (container.TopResponse, error) {
	resp := container.TopResponse{Processes: [][]string{}}
	lines := strings.Split(string(out), "\n")
	resp.Titles = fieldsASCII(lines[0])
	pidIndex := slices.Index(resp.Titles, "PID")
	if pidIndex == -1 {
		return resp, errors.New("Couldn't find PID field in ps output")
	}
	// The last column (the command) takes the rest of the line.
	add := func(fields []string) {
		n := len(resp.Titles)
		if len(fields) < n {
			fields = append(fields, make([]string, n-len(fields))...)
		}
		row := append([]string{}, fields[:n-1]...)
		resp.Processes = append(resp.Processes, append(row, strings.Join(fields[n-1:], " ")))
	}
	lastKept := false
	for _, line := range lines[1:] {
		if line == "" {
			continue
		}
		fields := fieldsASCII(line)
		if pidIndex >= len(fields) {
			continue
		}
		if fields[pidIndex] == "-" {
			if lastKept {
				add(fields)
			}
			continue
		}
		p, err := strconv.Atoi(fields[pidIndex])
		if err != nil {
			return resp, fmt.Errorf("Unexpected pid '%s': %s", fields[pidIndex], err)
		}
		lastKept = slices.Contains(pids, p)
		if lastKept {
			add(fields)
		}
	}
	return resp, nil
}
