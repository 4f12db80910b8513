package httpapi

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
)

// Filters is the decoded `filters` query parameter: a JSON object of
// key → {value: true}, e.g. {"type":{"container":true}}. The matching
// methods follow dockerd's api/types/filters.Args: a key that is absent
// (or has no values) matches everything.
type Filters struct {
	fields map[string]map[string]bool
}

// ParseFilters decodes a `filters` value. It accepts the current
// map-of-maps form and the legacy map-of-lists form ({"type":["image"]})
// older clients send. An empty string is no filter.
func ParseFilters(s string) (Filters, error) {
	f := Filters{fields: map[string]map[string]bool{}}
	if s == "" {
		return f, nil
	}
	if err := json.Unmarshal([]byte(s), &f.fields); err == nil {
		if f.fields == nil {
			f.fields = map[string]map[string]bool{}
		}
		return f, nil
	} else {
		var legacy map[string][]string
		if lerr := json.Unmarshal([]byte(s), &legacy); lerr != nil {
			return Filters{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter: %v", err))
		}
		for k, vs := range legacy {
			m := make(map[string]bool, len(vs))
			for _, v := range vs {
				m[v] = true
			}
			f.fields[k] = m
		}
		return f, nil
	}
}

// Add adds value under key.
func (f *Filters) Add(key, value string) {
	if f.fields == nil {
		f.fields = map[string]map[string]bool{}
	}
	if f.fields[key] == nil {
		f.fields[key] = map[string]bool{}
	}
	f.fields[key][value] = true
}

// Len is the number of keys.
func (f Filters) Len() int { return len(f.fields) }

// Contains reports whether key is present.
func (f Filters) Contains(key string) bool {
	_, ok := f.fields[key]
	return ok
}

// Keys returns the keys in order.
func (f Filters) Keys() []string {
	keys := make([]string, 0, len(f.fields))
	for k := range f.fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Get returns the values of key in order.
func (f Filters) Get(key string) []string {
	vals := make([]string, 0, len(f.fields[key]))
	for v := range f.fields[key] {
		vals = append(vals, v)
	}
	slices.Sort(vals)
	return vals
}

// Validate answers 400 `invalid filter 'k'` for a key outside accepted.
func (f Filters) Validate(accepted ...string) error {
	for _, k := range f.Keys() {
		if !slices.Contains(accepted, k) {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter '%s'", k))
		}
	}
	return nil
}

// ExactMatch reports whether source is one of key's values.
func (f Filters) ExactMatch(key, source string) bool {
	vals := f.fields[key]
	if len(vals) == 0 {
		return true
	}
	return vals[source]
}

// FuzzyMatch is ExactMatch, or source starts with one of key's values
// (ID prefixes, names).
func (f Filters) FuzzyMatch(key, source string) bool {
	if f.ExactMatch(key, source) {
		return true
	}
	for prefix := range f.fields[key] {
		if strings.HasPrefix(source, prefix) {
			return true
		}
	}
	return false
}

// MatchKVList matches "k" and "k=v" values (labels) against sources: every
// value must match.
func (f Filters) MatchKVList(key string, sources map[string]string) bool {
	vals := f.fields[key]
	if len(vals) == 0 {
		return true
	}
	if len(sources) == 0 {
		return false
	}
	for v := range vals {
		k, want, hasValue := strings.Cut(v, "=")
		got, ok := sources[k]
		if !ok || (hasValue && got != want) {
			return false
		}
	}
	return true
}

// GetBool reads a boolean filter ("dangling": "true"/"1"/"false"/"0"). ok
// is false when key is absent.
func (f Filters) GetBool(key string) (value, ok bool, err error) {
	vals := f.Get(key)
	if len(vals) == 0 {
		return false, false, nil
	}
	if len(vals) > 1 {
		return false, false, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter '%s': more than one value", key))
	}
	switch strings.ToLower(vals[0]) {
	case "true", "1":
		return true, true, nil
	case "false", "0":
		return false, true, nil
	}
	return false, false, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter '%s=%s'", key, vals[0]))
}
