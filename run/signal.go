package run

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// ParseSignal reads a signal the way the Docker CLI and API accept it: a
// number, or a name with or without "SIG" in any case ("KILL", "sigterm",
// "SIGRTMIN+3").
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Invalid signal: %s", s))
		}
		return syscall.Signal(n), nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if sig := unix.SignalNum("SIG" + name); sig != 0 {
		return sig, nil
	}
	// Real-time signals: RTMIN, RTMIN+n, RTMAX, RTMAX-n.
	const rtmin, rtmax = 34, 64
	for _, rt := range []struct {
		prefix string
		base   int
		dir    int
	}{{"RTMIN", rtmin, 1}, {"RTMAX", rtmax, -1}} {
		if rest, ok := strings.CutPrefix(name, rt.prefix); ok {
			off := 0
			if rest != "" {
				sign := rest[0]
				n, err := strconv.Atoi(rest[1:])
				if err != nil || (rt.dir > 0 && sign != '+') || (rt.dir < 0 && sign != '-') {
					break
				}
				off = n * rt.dir
			}
			if v := rt.base + off; v >= rtmin && v <= rtmax {
				return syscall.Signal(v), nil
			}
		}
	}
	return 0, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Invalid signal: %s", s))
}
