package chain

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/cas"
	"github.com/opencontainers/go-digest"
)

// ImageUsers asks the configured source which containers use which image.
func (s *Store) ImageUsers(ctx context.Context) map[digest.Digest][]ImageUser {
	if s.imageUsers == nil {
		return nil
	}
	return s.imageUsers(ctx)
}

// SetImageUsers installs the source of ImageUsers once the container
// manager (built on this store) exists.
func (s *Store) SetImageUsers(fn ImageUsersFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.imageUsers = fn
}

// LayersSize is the sum of the sizes of every layer in the store.
func (s *Store) LayersSize(ctx context.Context) int64 {
	var total int64
	s.cas.Index.View(ctx, func(tx *cas.Tx) error {
		return tx.Scan("layerdb/sha256/", true, func(rest string, v []byte) error {
			if strings.HasSuffix(rest, "/size") {
				var n int64
				for _, c := range v {
					n = n*10 + int64(c-'0')
				}
				total += n
			}
			return nil
		})
	})
	return total
}

// GraphDriver describes where an image's chain lives, the way docker
// inspect shows it.
func (s *Store) GraphDriver(ctx context.Context, top digest.Digest) (string, map[string]string) {
	name := s.driver.Name()
	if top == "" {
		return name, nil
	}
	var dirs []string
	for c := top; c != ""; {
		l, err := s.Layer(ctx, c)
		if err != nil {
			break
		}
		dirs = append(dirs, s.driver.DiffPath(l.CacheID))
		c = l.Parent
	}
	if len(dirs) == 0 {
		return name, nil
	}
	if name != "overlay2" {
		return name, map[string]string{"Dir": dirs[0]}
	}
	data := map[string]string{
		"UpperDir":  dirs[0],
		"WorkDir":   filepath.Join(filepath.Dir(dirs[0]), "work"),
		"MergedDir": filepath.Join(filepath.Dir(dirs[0]), "merged"),
	}
	if len(dirs) > 1 {
		data["LowerDir"] = strings.Join(dirs[1:], ":")
	}
	return name, data
}
