package cli

import (
	"io"
	"strconv"
	"time"

	"github.com/distribution/reference"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/image"
)

const (
	defaultImageTableFormat           = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}"
	defaultImageTableFormatWithDigest = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}"
)

// imageHeader names the columns of image listings (images, system df -v).
var imageHeader = map[string]string{
	"ID":           "IMAGE ID",
	"Repository":   "REPOSITORY",
	"Tag":          "TAG",
	"Digest":       "DIGEST",
	"CreatedSince": createdSinceHeader,
	"CreatedAt":    createdAtHeader,
	"Size":         sizeHeader,
	"Containers":   "CONTAINERS",
	"SharedSize":   "SHARED SIZE",
	"UniqueSize":   "UNIQUE SIZE",
}

// imageListFormat picks the template for `images` from --format, -q and
// --digests the way docker does.
func imageListFormat(source string, quiet, digest bool) outputFormat {
	switch source {
	case tableFormatKey:
		switch {
		case quiet:
			return defaultQuietFormat
		case digest:
			return defaultImageTableFormatWithDigest
		default:
			return defaultImageTableFormat
		}
	case rawFormatKey:
		switch {
		case quiet:
			return `image_id: {{.ID}}`
		case digest:
			return "repository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n"
		default:
			return "repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n"
		}
	}
	f := outputFormat(source)
	if f.isTable() && digest && !f.contains("{{.Digest}}") {
		f += "\t{{.Digest}}"
	}
	return f
}

// isDangling: an image without a name. Old daemons spell that
// "<none>:<none>" / "<none>@<none>".
func isDangling(img image.Summary) bool {
	if len(img.RepoTags) == 0 && len(img.RepoDigests) == 0 {
		return true
	}
	return len(img.RepoTags) == 1 && img.RepoTags[0] == "<none>:<none>" &&
		len(img.RepoDigests) == 1 && img.RepoDigests[0] == "<none>@<none>"
}

// writeImages renders an image listing: one row per repository:tag (and
// per digest when digests are shown), "<none>" for dangling images.
func writeImages(out io.Writer, format outputFormat, trunc, showDigests bool, images []image.Summary) error {
	lw, err := newListWriter(out, format)
	if err != nil {
		return err
	}
	needDigest := showDigests || format.contains("{{.Digest}}")
	for _, img := range images {
		for _, row := range imageRows(img, trunc, showDigests, needDigest) {
			if err := lw.row(row); err != nil {
				return err
			}
		}
	}
	return lw.flush(imageHeader)
}

// imageRows splits one image into its listing rows. Repositories come in
// the order of RepoTags (docker walks a map, so its order varies between
// runs; any fixed order is one docker could print).
func imageRows(img image.Summary, trunc, showDigests, needDigest bool) []*imageRow {
	if isDangling(img) {
		return []*imageRow{{trunc: trunc, img: img, repo: "<none>", tag: "<none>", digest: "<none>"}}
	}
	var (
		repoOrder   []string
		repoTags    = map[string][]string{}
		digestOrder []string
		repoDigests = map[string][]string{}
	)
	for _, s := range img.RepoTags {
		ref, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			continue
		}
		if nt, ok := ref.(reference.NamedTagged); ok {
			name := reference.FamiliarName(ref)
			if _, seen := repoTags[name]; !seen {
				repoOrder = append(repoOrder, name)
			}
			repoTags[name] = append(repoTags[name], nt.Tag())
		}
	}
	for _, s := range img.RepoDigests {
		ref, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			continue
		}
		if c, ok := ref.(reference.Canonical); ok {
			name := reference.FamiliarName(ref)
			if _, seen := repoDigests[name]; !seen {
				digestOrder = append(digestOrder, name)
			}
			repoDigests[name] = append(repoDigests[name], c.Digest().String())
		}
	}

	var rows []*imageRow
	add := func(repo, tag, digest string) {
		rows = append(rows, &imageRow{trunc: trunc, img: img, repo: repo, tag: tag, digest: digest})
	}
	for _, repo := range repoOrder {
		digests := repoDigests[repo]
		delete(repoDigests, repo)
		if !needDigest {
			digests = nil
		}
		for _, tag := range repoTags[repo] {
			if len(digests) == 0 {
				add(repo, tag, "<none>")
				continue
			}
			for _, d := range digests {
				add(repo, tag, d)
			}
		}
	}
	for _, repo := range digestOrder {
		digests, left := repoDigests[repo]
		if !left {
			continue
		}
		if showDigests {
			for _, d := range digests {
				add(repo, "<none>", d)
			}
		} else {
			add(repo, "<none>", "")
		}
	}
	return rows
}

// imageRow is one line of an image listing; its methods are the
// placeholders of `berth images --format`.
type imageRow struct {
	trunc  bool
	img    image.Summary
	repo   string
	tag    string
	digest string
}

func (r *imageRow) MarshalJSON() ([]byte, error) { return marshalMethods(r) }

func (r *imageRow) ID() string {
	if r.trunc {
		return truncateID(r.img.ID)
	}
	return r.img.ID
}

func (r *imageRow) Repository() string { return r.repo }
func (r *imageRow) Tag() string        { return r.tag }
func (r *imageRow) Digest() string     { return r.digest }

func (r *imageRow) CreatedSince() string {
	created := time.Unix(r.img.Created, 0)
	if created.IsZero() {
		return ""
	}
	return units.HumanDuration(time.Now().UTC().Sub(created)) + " ago"
}

func (r *imageRow) CreatedAt() string { return time.Unix(r.img.Created, 0).String() }

func (r *imageRow) Size() string { return units.HumanSizeWithPrecision(float64(r.img.Size), 3) }

// VirtualSize is the deprecated twin of Size (equal since API 1.43; the
// client types no longer carry it), kept for templates and JSON.
func (r *imageRow) VirtualSize() string { return units.HumanSize(float64(r.img.Size)) }

func (r *imageRow) Containers() string {
	if r.img.Containers == -1 {
		return "N/A"
	}
	return strconv.FormatInt(r.img.Containers, 10)
}

func (r *imageRow) SharedSize() string {
	if r.img.SharedSize == -1 {
		return "N/A"
	}
	return units.HumanSize(float64(r.img.SharedSize))
}

func (r *imageRow) UniqueSize() string {
	if r.img.Size == -1 || r.img.SharedSize == -1 {
		return "N/A"
	}
	return units.HumanSize(float64(r.img.Size - r.img.SharedSize))
}
