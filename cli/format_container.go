package cli

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
)

// containerHeader names the columns of container listings.
var containerHeader = map[string]string{
	"ID":           "CONTAINER ID",
	"Names":        "NAMES",
	"Image":        "IMAGE",
	"Command":      "COMMAND",
	"CreatedAt":    createdAtHeader,
	"RunningFor":   "CREATED",
	"Ports":        "PORTS",
	"State":        "STATE",
	"Status":       "STATUS",
	"Size":         sizeHeader,
	"Labels":       "LABELS",
	"Mounts":       "MOUNTS",
	"LocalVolumes": "LOCAL VOLUMES",
	"Networks":     "NETWORKS",
}

// containerRow is one container of a listing (system df -v, and ps when
// it lands); its methods are docker's --format placeholders.
type containerRow struct {
	trunc bool
	c     container.Summary
}

func (r *containerRow) MarshalJSON() ([]byte, error) { return marshalMethods(r) }

func (r *containerRow) ID() string {
	if r.trunc {
		return truncateID(r.c.ID)
	}
	return r.c.ID
}

// Names lists the names without their leading "/"; truncated, only the
// first name that is not a legacy link alias ("/other/alias").
func (r *containerRow) Names() string {
	var names []string
	for _, n := range r.c.Names {
		name := strings.TrimPrefix(n, "/")
		if r.trunc {
			if !strings.Contains(name, "/") {
				return name
			}
			continue
		}
		names = append(names, name)
	}
	return strings.Join(names, ",")
}

func (r *containerRow) Image() string {
	if r.c.Image == "" {
		return "<no image>"
	}
	if !r.trunc {
		return r.c.Image
	}
	if short := truncateID(r.c.ImageID); short == truncateID(r.c.Image) {
		return short
	}
	ref, err := reference.ParseNormalizedNamed(r.c.Image)
	if err != nil {
		return r.c.Image
	}
	if _, ok := ref.(reference.Digested); ok {
		var tag string
		if t, ok := ref.(reference.Tagged); ok {
			tag = t.Tag()
		}
		ref = reference.TrimNamed(ref)
		if tag != "" {
			if withTag, err := reference.WithTag(ref, tag); err == nil {
				ref = withTag
			}
		}
	}
	return reference.FamiliarString(ref)
}

func (r *containerRow) Command() string {
	cmd := r.c.Command
	if r.trunc {
		cmd = ellipsis(cmd, 20)
	}
	return strconv.Quote(cmd)
}

func (r *containerRow) CreatedAt() string { return time.Unix(r.c.Created, 0).String() }

func (r *containerRow) RunningFor() string {
	return units.HumanDuration(time.Now().UTC().Sub(time.Unix(r.c.Created, 0))) + " ago"
}

func (r *containerRow) Ports() string { return displayablePorts(r.c.Ports) }

func (r *containerRow) State() string  { return string(r.c.State) }
func (r *containerRow) Status() string { return r.c.Status }

func (r *containerRow) Size() string {
	rw := units.HumanSizeWithPrecision(float64(r.c.SizeRw), 3)
	if r.c.SizeRootFs > 0 {
		return fmt.Sprintf("%s (virtual %s)", rw, units.HumanSizeWithPrecision(float64(r.c.SizeRootFs), 3))
	}
	return rw
}

func (r *containerRow) Labels() string { return joinLabels(r.c.Labels) }

func (r *containerRow) Label(name string) string { return r.c.Labels[name] }

func (r *containerRow) Mounts() string {
	mounts := make([]string, 0, len(r.c.Mounts))
	for _, m := range r.c.Mounts {
		name := m.Name
		if name == "" {
			name = m.Source
		}
		if r.trunc {
			name = ellipsis(name, 15)
		}
		mounts = append(mounts, name)
	}
	return strings.Join(mounts, ",")
}

func (r *containerRow) LocalVolumes() string {
	n := 0
	for _, m := range r.c.Mounts {
		if m.Driver == "local" {
			n++
		}
	}
	return strconv.Itoa(n)
}

func (r *containerRow) Networks() string {
	if r.c.NetworkSettings == nil {
		return ""
	}
	nets := make([]string, 0, len(r.c.NetworkSettings.Networks))
	for k := range r.c.NetworkSettings.Networks {
		nets = append(nets, k)
	}
	sort.Strings(nets)
	return strings.Join(nets, ",")
}

// joinLabels renders labels as sorted k=v pairs separated by commas.
func joinLabels(labels map[string]string) string {
	if labels == nil {
		return ""
	}
	pairs := make([]string, 0, len(labels))
	for k, v := range labels {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

// displayablePorts renders published and exposed ports as docker's PORTS
// column: consecutive ports grouped into ranges ("8000-8002/tcp"),
// published ones as "0.0.0.0:8080->80/tcp".
func displayablePorts(ports []container.PortSummary) string {
	type group struct{ first, last uint16 }
	groups := map[string]*group{}
	var keys, result, mappings []string
	sorted := append([]container.PortSummary(nil), ports...)
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.PrivatePort != b.PrivatePort {
			return a.PrivatePort < b.PrivatePort
		}
		if a.IP != b.IP {
			return a.IP.String() < b.IP.String()
		}
		if a.PublicPort != b.PublicPort {
			return a.PublicPort < b.PublicPort
		}
		return a.Type < b.Type
	})
	for _, p := range sorted {
		key := p.Type
		if p.IP.IsValid() {
			if p.PublicPort != p.PrivatePort {
				hostPort := net.JoinHostPort(p.IP.String(), strconv.Itoa(int(p.PublicPort)))
				mappings = append(mappings, fmt.Sprintf("%s->%d/%s", hostPort, p.PrivatePort, p.Type))
				continue
			}
			key = p.IP.String() + "/" + p.Type
		}
		g := groups[key]
		if g == nil {
			groups[key] = &group{p.PrivatePort, p.PrivatePort}
			keys = append(keys, key)
			continue
		}
		if p.PrivatePort == g.last+1 {
			g.last = p.PrivatePort
			continue
		}
		result = append(result, portGroup(key, g.first, g.last))
		groups[key] = &group{p.PrivatePort, p.PrivatePort}
	}
	for _, k := range keys {
		g := groups[k]
		result = append(result, portGroup(k, g.first, g.last))
	}
	return strings.Join(append(result, mappings...), ", ")
}

func portGroup(key string, first, last uint16) string {
	ip, proto, hasIP := strings.Cut(key, "/")
	if !hasIP {
		proto, ip = key, ""
	}
	s := strconv.Itoa(int(first))
	if first != last {
		s = fmt.Sprintf("%s-%d", s, last)
	}
	if ip != "" {
		s = fmt.Sprintf("%s->%s", net.JoinHostPort(ip, s), s)
	}
	return s + "/" + proto
}
