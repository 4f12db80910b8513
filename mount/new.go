package mount

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// New opens the layer store at root with the named driver: "overlay2",
// "vfs", or "" to choose. Choosing keeps the driver that made the layers
// already on disk (overlay2 layers have a link file, vfs ones do not), and
// on an empty store takes overlay2 when OverlaySupported says it works.
func New(ctx context.Context, name, root string) (Driver, error) {
	if name == "" {
		name = existingDriver(root)
	}
	switch name {
	case "overlay2":
		if err := OverlaySupported(root); err != nil {
			return nil, fmt.Errorf("storage driver overlay2: %w", err)
		}
		return NewOverlay2(root)
	case "vfs":
		return NewVFS(root)
	case "":
		if OverlaySupported(root) == nil {
			return NewOverlay2(root)
		}
		return NewVFS(root)
	default:
		return nil, fmt.Errorf("unknown storage driver %q (want overlay2 or vfs)", name)
	}
}

// existingDriver names the driver that made the layer dirs under root, ""
// when there are none.
func existingDriver(root string) string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return ""
	}
	for _, e := range entries {
		if !e.IsDir() || validID(e.Name()) != nil {
			continue
		}
		if _, err := os.Lstat(filepath.Join(root, e.Name(), linkFileName)); err == nil {
			return "overlay2"
		}
		return "vfs"
	}
	return ""
}

// OverlaySupported checks that overlay2 can work in root: the filesystem
// reports file types in directory entries (overlay needs d_type) and an
// overlay mount with two lower dirs, an upper and a work dir succeeds
// there. It mounts and unmounts a scratch overlay under root.
func OverlaySupported(root string) (retErr error) {
	if err := os.MkdirAll(root, 0o701); err != nil {
		return fmt.Errorf("overlay check: %w", err)
	}
	dir, err := os.MkdirTemp(root, ".overlay-check-")
	if err != nil {
		return fmt.Errorf("overlay check: %w", err)
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil && retErr == nil {
			retErr = fmt.Errorf("overlay check: %w", err)
		}
	}()
	for _, sub := range []string{"lower1", "lower2", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return fmt.Errorf("overlay check: %w", err)
		}
	}
	if err := supportsDType(dir); err != nil {
		return fmt.Errorf("overlay check: %w", err)
	}
	merged := filepath.Join(dir, "merged")
	opts := "lowerdir=" + filepath.Join(dir, "lower2") + ":" + filepath.Join(dir, "lower1") +
		",upperdir=" + filepath.Join(dir, "upper") + ",workdir=" + filepath.Join(dir, "work")
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return fmt.Errorf("overlay check: mount: %w", err)
	}
	if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("overlay check: unmount: %w", err)
	}
	return nil
}

// supportsDType reads dir's raw entries and fails if the filesystem leaves
// their type unknown (xfs with ftype=0), which breaks overlay's whiteouts.
func supportsDType(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	n, err := unix.Getdents(fd, buf)
	if err != nil {
		return fmt.Errorf("getdents: %w", err)
	}
	// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
	for b := buf[:n]; len(b) >= 19; {
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen == 0 || reclen > len(b) {
			break
		}
		if b[18] == unix.DT_UNKNOWN {
			return errors.New("the filesystem does not report file types (d_type); overlay needs them")
		}
		b = b[reclen:]
	}
	return nil
}
