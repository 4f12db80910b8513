package netns

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Create makes a new network namespace with its loopback interface up and
// pins it with a bind mount at path, so it outlives every process in it and
// a runtime can join it by path. The namespace is created on a thread that
// is thrown away afterwards: no other goroutine ever runs in it.
func Create(ctx context.Context, path string) (retErr error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create netns %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("create netns %s: %w", path, err)
	}
	f.Close()
	defer func() {
		if retErr != nil {
			os.Remove(path)
		}
	}()
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the runtime ends this thread when the goroutine
		// returns instead of handing it, in the new namespace, to others.
		runtime.LockOSThread()
		errc <- createOnThisThread(path)
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("create netns %s: %w", path, err)
	}
	return nil
}

func createOnThisThread(path string) error {
	h, err := netns.New()
	if err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	defer h.Close()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
	if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	return nil
}

// Remove unpins the namespace at path and deletes the file; the kernel
// frees the namespace once no process is left in it. A missing path is not
// an error.
func Remove(ctx context.Context, path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}

// Pinned reports whether path holds a pinned network namespace.
func Pinned(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}
