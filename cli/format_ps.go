package cli

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"path"
	"strings"
	"text/template"
	"unicode"

	"github.com/docker/cli/templates"
	"golang.org/x/text/width"

	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const defaultContainerTableFormat = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

// psHeader names the columns of `ps`: the container listing's plus the
// platform docker 28 shows.
var psHeader = func() headerContext {
	h := headerContext(maps.Clone(containerHeader))
	h["Platform"] = "PLATFORM"
	return h
}()

// psFormat picks the template for `ps` from --format, -q and -s the way
// docker does.
func psFormat(source string, quiet, size bool) outputFormat {
	switch source {
	case tableFormatKey, "":
		if quiet {
			return defaultQuietFormat
		}
		f := defaultContainerTableFormat
		if size {
			f += `\t{{.Size}}`
		}
		return outputFormat(f)
	case rawFormatKey:
		if quiet {
			return `container_id: {{.ID}}`
		}
		f := "container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\n" +
			"state: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\n" +
			"labels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n"
		if size {
			f += `size: {{.Size}}\n`
		}
		return outputFormat(f)
	}
	if quiet {
		return defaultQuietFormat
	}
	return outputFormat(source)
}

// psRow is one line of `ps`: the container row and docker's Platform
// placeholder. It notes when the template reads .Size, which makes ps
// ask the daemon for sizes.
type psRow struct {
	*containerRow
	sizeUsed bool
}

func (r *psRow) MarshalJSON() ([]byte, error) { return marshalMethods(r) }

func (r *psRow) Size() string {
	r.sizeUsed = true
	return r.containerRow.Size()
}

// psPlatform prints as os/arch[/variant] and marshals as the OCI platform.
type psPlatform struct{ ocispec.Platform }

func (p psPlatform) String() string { return path.Join(p.OS, p.Architecture, p.Variant) }

// Platform is nil (printed "<nil>", JSON null) when the daemon does not
// say which platform's manifest the container runs.
func (r *psRow) Platform() *psPlatform {
	d := r.c.ImageManifestDescriptor
	if d == nil || d.Platform == nil {
		return nil
	}
	return &psPlatform{*d.Platform}
}

// psTemplateUsesSize runs a --format template once on an empty row, as
// docker does, to learn whether it shows .Size.
func psTemplateUsesSize(format string) (bool, error) {
	t, err := parseTemplateRaw(format)
	if err != nil {
		return false, fmt.Errorf("failed to parse template: %w", err)
	}
	probe := &psRow{containerRow: &containerRow{}}
	if err := t.Execute(io.Discard, probe); err != nil {
		return false, fmt.Errorf("failed to execute template: %w", err)
	}
	return probe.sizeUsed, nil
}

// writePs renders a container listing.
func writePs(out io.Writer, format outputFormat, trunc bool, containers []container.Summary) error {
	tw, err := newWideTableWriter(out, format)
	if err != nil {
		return err
	}
	for _, c := range containers {
		if err := tw.row(&psRow{containerRow: &containerRow{trunc: trunc, c: c}}); err != nil {
			return err
		}
	}
	return tw.flush(psHeader)
}

// headerContext is the value a table's header row is rendered from: the
// column titles by placeholder, and Label for {{.Label "name"}} columns,
// titled by the label's last dotted part as docker does.
type headerContext map[string]string

func (h headerContext) Label(name string) string {
	n := strings.Split(name, ".")
	return strings.NewReplacer("-", " ", "_", " ").Replace(n[len(n)-1])
}

// wideTableWriter is listWriter for the listings that must align wide
// characters as docker does: docker's tabwriter measures cells in
// terminal columns (a CJK character takes two), text/tabwriter in runes.
type wideTableWriter struct {
	out    io.Writer
	format outputFormat
	tmpl   *template.Template
	buf    bytes.Buffer
}

func newWideTableWriter(out io.Writer, format outputFormat) (*wideTableWriter, error) {
	t, err := parseTemplate(format.templateString())
	if err != nil {
		return nil, err
	}
	return &wideTableWriter{out: out, format: format, tmpl: t}, nil
}

func (w *wideTableWriter) row(v any) error {
	if err := w.tmpl.Execute(&w.buf, v); err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	w.buf.WriteByte('\n')
	return nil
}

// flush writes the header (tables only; a header template that fails
// part-way is printed as far as it got, like docker) and the rows.
func (w *wideTableWriter) flush(header headerContext) error {
	if !w.format.isTable() {
		_, err := w.buf.WriteTo(w.out)
		return err
	}
	var all bytes.Buffer
	_ = w.tmpl.Funcs(templates.HeaderFunctions).Execute(&all, header)
	all.WriteByte('\n')
	all.Write(w.buf.Bytes())
	_, err := io.WriteString(w.out, alignColumns(all.String(), 10, 3))
	return err
}

// alignColumns is text/tabwriter's algorithm (tab-terminated cells,
// columns aligned over blocks of consecutive lines that have them, width
// = max(minwidth, cell+padding), padded with spaces) with cells measured
// in terminal columns.
func alignColumns(text string, minwidth, padding int) string {
	lines := strings.Split(text, "\n")
	cells := make([][]string, len(lines))
	for i, l := range lines {
		cells[i] = strings.Split(l, "\t")
	}
	var b strings.Builder
	var widths []int
	writeLines := func(from, to int) {
		for i := from; i < to; i++ {
			for j, c := range cells[i] {
				b.WriteString(c)
				if j < len(widths) {
					b.WriteString(strings.Repeat(" ", max(widths[j]-displayWidth(c), 0)))
				}
			}
			if i+1 < len(lines) {
				b.WriteByte('\n')
			}
		}
	}
	var format func(line0, line1 int)
	format = func(line0, line1 int) {
		column := len(widths)
		for this := line0; this < line1; this++ {
			if column >= len(cells[this])-1 {
				continue
			}
			writeLines(line0, this)
			line0 = this
			width := minwidth
			for ; this < line1 && column < len(cells[this])-1; this++ {
				width = max(width, displayWidth(cells[this][column])+padding)
			}
			widths = append(widths, width)
			format(line0, this)
			widths = widths[:len(widths)-1]
			line0 = this
		}
		writeLines(line0, line1)
	}
	format(0, len(lines))
	return b.String()
}

// displayWidth counts terminal columns: two for East Asian wide and
// full-width characters, none for combining marks and controls.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Mn, r) || unicode.IsControl(r):
		case width.LookupRune(r).Kind() == width.EastAsianWide || width.LookupRune(r).Kind() == width.EastAsianFullwidth:
			n += 2
		default:
			n++
		}
	}
	return n
}
