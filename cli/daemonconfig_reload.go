package cli

import (
	"fmt"
	"reflect"
	"slices"
)

// ReloadableKeys are the daemon.json keys a running berthd applies on
// SIGHUP: the reload list of the dockerd reference (debug, labels,
// max-concurrent-downloads/uploads, default-runtime, runtimes) plus the
// registry settings dockerd also reloads. Everything else needs a restart.
func ReloadableKeys() []string {
	return []string{
		"debug",
		"labels",
		"max-concurrent-downloads",
		"max-concurrent-uploads",
		"registry-mirrors",
		"insecure-registries",
		"default-runtime",
		"runtimes",
	}
}

// ReloadResult is the outcome of a successful reload.
type ReloadResult struct {
	// Config is the new running configuration: the old one with every
	// reloadable key taken from the re-read configuration.
	Config *DaemonConfig
	// Changed lists the reloadable keys whose value changed.
	Changed []string
	// NotReloadable lists keys whose value in the re-read configuration
	// differs from the running one but that only take effect on restart;
	// they are not applied (the daemon logs them).
	NotReloadable []string
}

// Reload re-reads the configuration file c was loaded from and re-applies
// the command-line flags c was started with, with every check of a start:
// unknown keys, flag/file conflicts, types, validation. On error nothing
// changes (c is never modified). Otherwise the reloadable keys get the
// values a restart with the same flags would give them — a key removed from
// the file falls back to its flag or default value.
func (c *DaemonConfig) Reload() (*ReloadResult, error) {
	defaultFile := c.defaultFile
	if defaultFile == "" {
		defaultFile = DefaultDaemonConfigFile
	}
	fresh, err := loadDaemonConfig(c.args, defaultFile)
	if err != nil {
		return nil, fmt.Errorf("reload configuration: %w", err)
	}
	return c.ApplyReload(fresh), nil
}

// ApplyReload merges a freshly loaded configuration into c: it returns a
// copy of c with the reloadable keys taken from fresh, and reports which
// keys changed and which differ but cannot be applied without a restart.
// Neither c nor fresh is modified.
func (c *DaemonConfig) ApplyReload(fresh *DaemonConfig) *ReloadResult {
	next := c.clone()
	// The warnings are about the configuration just read (normalised
	// registries, deprecated keys); the daemon logs them for the reload.
	next.Warnings = slices.Clone(fresh.Warnings)
	res := &ReloadResult{Config: next}
	reloadable := ReloadableKeys()
	for _, k := range configKeys() {
		cur, nv := fieldByKey(c, k), fieldByKey(fresh, k)
		if equalValues(cur, nv) {
			continue
		}
		if slices.Contains(reloadable, k) {
			fieldByKey(next, k).Set(cloneValue(nv))
			res.Changed = append(res.Changed, k)
		} else {
			res.NotReloadable = append(res.NotReloadable, k)
		}
	}
	return res
}

// clone deep-copies c so that a reload never shares slices or maps with the
// configuration the daemon is running on.
func (c *DaemonConfig) clone() *DaemonConfig {
	n := &DaemonConfig{}
	src, dst := reflect.ValueOf(c).Elem(), reflect.ValueOf(n).Elem()
	for i := 0; i < src.NumField(); i++ {
		if dst.Field(i).CanSet() {
			dst.Field(i).Set(cloneValue(src.Field(i)))
		}
	}
	n.args = slices.Clone(c.args)
	n.defaultFile = c.defaultFile
	return n
}

// cloneValue deep-copies the kinds DaemonConfig is made of.
func cloneValue(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		n := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			n.Index(i).Set(cloneValue(v.Index(i)))
		}
		return n
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		n := reflect.MakeMapWithSize(v.Type(), v.Len())
		it := v.MapRange()
		for it.Next() {
			n.SetMapIndex(it.Key(), cloneValue(it.Value()))
		}
		return n
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		n := reflect.New(v.Type().Elem())
		n.Elem().Set(cloneValue(v.Elem()))
		return n
	case reflect.Struct:
		n := reflect.New(v.Type()).Elem()
		n.Set(v)
		for i := 0; i < v.NumField(); i++ {
			if n.Field(i).CanSet() {
				n.Field(i).Set(cloneValue(v.Field(i)))
			}
		}
		return n
	default:
		return v
	}
}

// equalValues is reflect.DeepEqual except that a nil and an empty slice or
// map are equal: an absent key and an empty list mean the same setting.
func equalValues(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := 0; i < a.Len(); i++ {
			if !equalValues(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		it := a.MapRange()
		for it.Next() {
			bv := b.MapIndex(it.Key())
			if !bv.IsValid() || !equalValues(it.Value(), bv) {
				return false
			}
		}
		return true
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equalValues(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if !equalValues(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	default:
		return a.Interface() == b.Interface()
	}
}
