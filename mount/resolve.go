package mount

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// resolveInRoot returns root joined with rel, with every symlink on the way
// resolved inside root. securejoin would clamp a symlink that points
// outside to root (chroot semantics); a layer tar that writes through such
// a link is hostile or broken, so escapingLinks refuses it instead.
func resolveInRoot(root, rel string) (string, error) {
	p, err := securejoin.SecureJoinVFS(root, rel, escapingLinks{root: root})
	if err != nil {
		return "", err
	}
	return p, nil
}

// escapingLinks is the securejoin VFS that fails on a symlink whose target
// is absolute or climbs above root.
type escapingLinks struct {
	root string
}

func (escapingLinks) Lstat(name string) (os.FileInfo, error) { return os.Lstat(name) }

func (v escapingLinks) Readlink(name string) (string, error) {
	target, err := os.Readlink(name)
	if err != nil {
		return "", err
	}
	// securejoin passes root + "/" + a symlink-free path inside root.
	rel := strings.TrimLeft(strings.TrimPrefix(name, v.root), "/")
	if filepath.IsAbs(target) {
		return "", fmt.Errorf("symlink %q points to %q: %w", rel, target, ErrBreakout)
	}
	if j := filepath.Join(filepath.Dir(rel), target); j == ".." || strings.HasPrefix(j, "../") {
		return "", fmt.Errorf("symlink %q points to %q: %w", rel, target, ErrBreakout)
	}
	return target, nil
}
