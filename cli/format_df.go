package cli

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
)

const (
	defaultDiskUsageImageTableFormat      = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}"
	defaultDiskUsageContainerTableFormat  = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}"
	defaultDiskUsageVolumeTableFormat     = "table {{.Name}}\t{{.Links}}\t{{.Size}}"
	defaultDiskUsageBuildCacheTableFormat = "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}"
	defaultDiskUsageTableFormat           = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
)

var diskUsageHeader = map[string]string{
	"Type":        "TYPE",
	"TotalCount":  "TOTAL",
	"Active":      "ACTIVE",
	"Size":        sizeHeader,
	"Reclaimable": "RECLAIMABLE",
}

var volumeHeader = map[string]string{
	"Name":       "VOLUME NAME",
	"Driver":     "DRIVER",
	"Scope":      "SCOPE",
	"Mountpoint": "MOUNTPOINT",
	"Labels":     "LABELS",
	"Links":      "LINKS",
	"Size":       sizeHeader,
}

var buildCacheHeader = map[string]string{
	"ID":            "CACHE ID",
	"Parent":        "PARENT",
	"CacheType":     "CACHE TYPE",
	"Size":          sizeHeader,
	"CreatedSince":  createdSinceHeader,
	"LastUsedSince": "LAST USED",
	"UsageCount":    "USAGE",
	"InUse":         "IN USE",
	"Shared":        "SHARED",
	"Description":   "DESCRIPTION",
}

func diskUsageFormat(source string, verbose bool) outputFormat {
	switch {
	case !verbose && source == tableFormatKey:
		return defaultDiskUsageTableFormat
	case !verbose && source == rawFormatKey:
		return "type: {{.Type}}\ntotal: {{.TotalCount}}\nactive: {{.Active}}\nsize: {{.Size}}\nreclaimable: {{.Reclaimable}}\n"
	}
	return outputFormat(source)
}

// diskUsageRow is one line of the `system df` summary.
type diskUsageRow struct {
	kind        string
	total       int64
	active      int64
	size        int64
	reclaimable int64
	// percent: show the reclaimable share ("1.2MB (50%)"); docker
	// leaves it out for the build cache.
	percent bool
}

func (r *diskUsageRow) MarshalJSON() ([]byte, error) { return marshalMethods(r) }

func (r *diskUsageRow) Type() string       { return r.kind }
func (r *diskUsageRow) TotalCount() string { return strconv.FormatInt(r.total, 10) }
func (r *diskUsageRow) Active() string     { return strconv.FormatInt(r.active, 10) }
func (r *diskUsageRow) Size() string       { return units.HumanSize(float64(r.size)) }

func (r *diskUsageRow) Reclaimable() string {
	if r.percent && r.size > 0 {
		return fmt.Sprintf("%s (%v%%)", units.HumanSize(float64(r.reclaimable)), (r.reclaimable*100)/r.size)
	}
	return units.HumanSize(float64(r.reclaimable))
}

// diskUsageRows summarises the four kinds. With a pre-1.52 daemon the
// client has every object and the totals are computed as docker 28 does
// (which differs from the client library's reading for images and for
// volumes of unknown size); a newer daemon sends the totals itself.
func diskUsageRows(du client.DiskUsageResult, legacy bool) []*diskUsageRow {
	rows := []*diskUsageRow{
		{kind: "Images", total: du.Images.TotalCount, active: du.Images.ActiveCount, size: du.Images.TotalSize, reclaimable: du.Images.Reclaimable, percent: true},
		{kind: "Containers", total: du.Containers.TotalCount, active: du.Containers.ActiveCount, size: du.Containers.TotalSize, reclaimable: du.Containers.Reclaimable, percent: true},
		{kind: "Local Volumes", total: du.Volumes.TotalCount, active: du.Volumes.ActiveCount, size: du.Volumes.TotalSize, reclaimable: du.Volumes.Reclaimable, percent: true},
		{kind: "Build Cache", total: du.BuildCache.TotalCount, active: du.BuildCache.ActiveCount, size: du.BuildCache.TotalSize, reclaimable: du.BuildCache.Reclaimable},
	}
	if !legacy {
		return rows
	}

	img := rows[0]
	img.active, img.reclaimable = 0, 0
	var used int64
	for _, i := range du.Images.Items {
		if i.Containers > 0 {
			img.active++
		}
		if i.Containers != 0 && i.Size != -1 && i.SharedSize != -1 {
			used += i.Size - i.SharedSize
		}
	}
	img.reclaimable = img.size - used

	ctr := rows[1]
	ctr.active, ctr.size, ctr.reclaimable = 0, 0, 0
	for _, c := range du.Containers.Items {
		ctr.size += c.SizeRw
		if containerActive(c) {
			ctr.active++
		} else {
			ctr.reclaimable += c.SizeRw
		}
	}

	vol := rows[2]
	vol.active, vol.size, vol.reclaimable = 0, 0, 0
	var volUsed int64
	for _, v := range du.Volumes.Items {
		if v.UsageData == nil {
			continue
		}
		if v.UsageData.RefCount > 0 {
			vol.active++
		}
		if v.UsageData.Size != -1 {
			if v.UsageData.RefCount > 0 {
				volUsed += v.UsageData.Size
			}
			vol.size += v.UsageData.Size
		}
	}
	vol.reclaimable = vol.size - volUsed

	bc := rows[3]
	bc.active, bc.size, bc.reclaimable = 0, 0, 0
	var inUse int64
	for _, b := range du.BuildCache.Items {
		if b.InUse {
			bc.active++
			if !b.Shared {
				inUse += b.Size
			}
		}
		if !b.Shared {
			bc.size += b.Size
		}
	}
	bc.reclaimable = bc.size - inUse
	return rows
}

func containerActive(c container.Summary) bool {
	s := string(c.State)
	return strings.Contains(s, "running") || strings.Contains(s, "paused") || strings.Contains(s, "restarting")
}

// writeDiskUsage prints `system df` without -v.
func writeDiskUsage(out io.Writer, format outputFormat, rows []*diskUsageRow) error {
	lw, err := newListWriter(out, format)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := lw.row(r); err != nil {
			return err
		}
	}
	return lw.flush(diskUsageHeader)
}

// diskUsageVerbose is what `system df -v --format` templates see.
type diskUsageVerbose struct {
	Images     []*imageRow
	Containers []*containerRow
	Volumes    []*volumeRow
	BuildCache []*buildCacheRow
}

func newDiskUsageVerbose(du client.DiskUsageResult, trunc bool) *diskUsageVerbose {
	v := &diskUsageVerbose{
		Images:     make([]*imageRow, 0, len(du.Images.Items)),
		Containers: make([]*containerRow, 0, len(du.Containers.Items)),
		Volumes:    make([]*volumeRow, 0, len(du.Volumes.Items)),
		BuildCache: make([]*buildCacheRow, 0, len(du.BuildCache.Items)),
	}
	for _, i := range du.Images.Items {
		repo, tag := "<none>", "<none>"
		if len(i.RepoTags) > 0 && !isDangling(i) {
			ref, err := reference.ParseNormalizedNamed(i.RepoTags[0])
			if err != nil {
				continue
			}
			if nt, ok := ref.(reference.NamedTagged); ok {
				repo, tag = reference.FamiliarName(ref), nt.Tag()
			}
		}
		v.Images = append(v.Images, &imageRow{trunc: trunc, img: i, repo: repo, tag: tag})
	}
	for _, c := range du.Containers.Items {
		// The size column shows the writable layer only.
		c.SizeRootFs = 0
		v.Containers = append(v.Containers, &containerRow{trunc: trunc, c: c})
	}
	for _, vol := range du.Volumes.Items {
		v.Volumes = append(v.Volumes, &volumeRow{v: vol})
	}
	cache := append([]build.CacheRecord(nil), du.BuildCache.Items...)
	sortBuildCache(cache)
	for _, b := range cache {
		v.BuildCache = append(v.BuildCache, &buildCacheRow{trunc: trunc, b: b})
	}
	return v
}

// writeDiskUsageVerbose prints `system df -v`: four tables, or the
// template once on all objects.
func writeDiskUsageVerbose(out io.Writer, format outputFormat, du client.DiskUsageResult, buildCacheSize int64) error {
	v := newDiskUsageVerbose(du, format.isTable())
	if format != tableFormatKey {
		t, err := parseTemplate(format.templateString())
		if err != nil {
			return err
		}
		return t.Execute(out, v)
	}
	section := func(title string, tmpl string, header map[string]string, rows int, row func(i int) any) error {
		if _, err := io.WriteString(out, title); err != nil {
			return err
		}
		lw, err := newListWriter(out, outputFormat(tmpl))
		if err != nil {
			return err
		}
		for i := range rows {
			if err := lw.row(row(i)); err != nil {
				return err
			}
		}
		return lw.flush(header)
	}
	if err := section("Images space usage:\n\n", defaultDiskUsageImageTableFormat, imageHeader, len(v.Images), func(i int) any { return v.Images[i] }); err != nil {
		return err
	}
	if err := section("\nContainers space usage:\n\n", defaultDiskUsageContainerTableFormat, containerHeader, len(v.Containers), func(i int) any { return v.Containers[i] }); err != nil {
		return err
	}
	if err := section("\nLocal Volumes space usage:\n\n", defaultDiskUsageVolumeTableFormat, volumeHeader, len(v.Volumes), func(i int) any { return v.Volumes[i] }); err != nil {
		return err
	}
	title := fmt.Sprintf("\nBuild cache usage: %s\n\n", units.HumanSize(float64(buildCacheSize)))
	return section(title, defaultDiskUsageBuildCacheTableFormat, buildCacheHeader, len(v.BuildCache), func(i int) any { return v.BuildCache[i] })
}

// volumeRow is one volume of a listing (system df -v, volume ls later).
type volumeRow struct{ v volume.Volume }

func (r *volumeRow) MarshalJSON() ([]byte, error) { return marshalMethods(r) }

func (r *volumeRow) Name() string             { return r.v.Name }
func (r *volumeRow) Driver() string           { return r.v.Driver }
func (r *volumeRow) Scope() string            { return r.v.Scope }
func (r *volumeRow) Mountpoint() string       { return r.v.Mountpoint }
func (r *volumeRow) Labels() string           { return joinLabels(r.v.Labels) }
func (r *volumeRow) Label(name string) string { return r.v.Labels[name] }

func (r *volumeRow) Links() string {
	if r.v.UsageData == nil {
		return "N/A"
	}
	return strconv.FormatInt(r.v.UsageData.RefCount, 10)
}

func (r *volumeRow) Size() string {
	if r.v.UsageData == nil {
		return "N/A"
	}
	return units.HumanSize(float64(r.v.UsageData.Size))
}

// buildCacheRow is one build cache record of `system df -v`.
type buildCacheRow struct {
	trunc bool
	b     build.CacheRecord
}

func (r *buildCacheRow) MarshalJSON() ([]byte, error) { return marshalMethods(r) }

func (r *buildCacheRow) ID() string {
	id := r.b.ID
	if r.trunc {
		id = truncateID(id)
	}
	if r.b.InUse {
		return id + "*"
	}
	return id
}

func (r *buildCacheRow) Parent() string {
	p := strings.Join(r.b.Parents, ", ")
	if r.trunc {
		return truncateID(p)
	}
	return p
}

func (r *buildCacheRow) CacheType() string   { return r.b.Type }
func (r *buildCacheRow) Description() string { return r.b.Description }
func (r *buildCacheRow) Size() string        { return units.HumanSizeWithPrecision(float64(r.b.Size), 3) }
func (r *buildCacheRow) CreatedAt() string   { return r.b.CreatedAt.String() }

func (r *buildCacheRow) CreatedSince() string {
	return units.HumanDuration(time.Now().UTC().Sub(r.b.CreatedAt)) + " ago"
}

func (r *buildCacheRow) LastUsedAt() string {
	if r.b.LastUsedAt == nil {
		return ""
	}
	return r.b.LastUsedAt.String()
}

func (r *buildCacheRow) LastUsedSince() string {
	if r.b.LastUsedAt == nil {
		return ""
	}
	return units.HumanDuration(time.Now().UTC().Sub(*r.b.LastUsedAt)) + " ago"
}

func (r *buildCacheRow) UsageCount() string { return strconv.Itoa(r.b.UsageCount) }
func (r *buildCacheRow) InUse() string      { return strconv.FormatBool(r.b.InUse) }
func (r *buildCacheRow) Shared() string     { return strconv.FormatBool(r.b.Shared) }

// sortBuildCache orders records by last use, never-used first.
func sortBuildCache(c []build.CacheRecord) {
	sort.Slice(c, func(i, j int) bool {
		a, b := c[i].LastUsedAt, c[j].LastUsedAt
		switch {
		case a == nil && b == nil:
			return c[i].ID < c[j].ID
		case a == nil:
			return true
		case b == nil:
			return false
		case a.Equal(*b):
			return c[i].ID < c[j].ID
		default:
			return a.Before(*b)
		}
	})
}
