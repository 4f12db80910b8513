package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"text/template"
	"unicode"
	"unicode/utf8"

	"github.com/docker/cli/templates"
	"github.com/moby/moby/client/pkg/stringid"
	"golang.org/x/text/width"
)

// Format keys of the --format flag, as in the docker CLI.
const (
	tableFormatKey = "table"
	jsonFormatKey  = "json"
	rawFormatKey   = "raw"

	defaultQuietFormat = "{{.ID}}"
	jsonFormat         = "{{json .}}"
)

// Column headers shared by several listings.
const (
	createdSinceHeader = "CREATED"
	createdAtHeader    = "CREATED AT"
	sizeHeader         = "SIZE"
)

// outputFormat is a --format value: "table", "table TEMPLATE", "json", or
// a bare Go template.
type outputFormat string

func (f outputFormat) isTable() bool { return strings.HasPrefix(string(f), tableFormatKey) }

func (f outputFormat) contains(sub string) bool { return strings.Contains(string(f), sub) }

// templateString is the Go template behind f: the "table" prefix removed,
// surrounding spaces trimmed and the escapes \t and \n made real, so
// `--format 'table {{.ID}}\t{{.Size}}'` works from a shell.
func (f outputFormat) templateString() string {
	s := string(f)
	switch s {
	case tableFormatKey:
		return ""
	case jsonFormatKey:
		return jsonFormat
	}
	s = strings.TrimPrefix(s, tableFormatKey)
	s = strings.Trim(s, " ")
	return strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(s)
}

// parseTemplate parses a user template with docker's functions (json,
// join, split, title, lower, upper, pad, truncate, println, index…).
func parseTemplate(s string) (*template.Template, error) {
	t, err := parseTemplateRaw(s)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %w", err)
	}
	return t, nil
}

// parseTemplateRaw is parseTemplate without the "template parsing error"
// prefix, for commands whose docker message words it differently.
func parseTemplateRaw(s string) (*template.Template, error) {
	return templates.Parse(s)
}

// newTableWriter is the column writer of docker's listings.
func newTableWriter(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
}

// listWriter renders rows of a listing through one --format: each row is
// executed into a buffer; a table gets the header (the same template
// executed on the header map, so only the chosen columns appear) and is
// aligned by a tabwriter.
type listWriter struct {
	out    io.Writer
	format outputFormat
	tmpl   *template.Template
	buf    bytes.Buffer
}

func newListWriter(out io.Writer, format outputFormat) (*listWriter, error) {
	t, err := parseTemplate(format.templateString())
	if err != nil {
		return nil, err
	}
	return &listWriter{out: out, format: format, tmpl: t}, nil
}

// row renders one element (a value whose exported methods are the
// template placeholders).
func (l *listWriter) row(v any) error {
	if err := l.tmpl.Execute(&l.buf, v); err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	l.buf.WriteByte('\n')
	return nil
}

// flush writes the header (tables only) and every row.
func (l *listWriter) flush(header map[string]string) error {
	if !l.format.isTable() {
		_, err := l.buf.WriteTo(l.out)
		return err
	}
	tw := newTableWriter(l.out)
	_ = l.tmpl.Funcs(templates.HeaderFunctions).Execute(tw, header)
	_, _ = tw.Write([]byte{'\n'})
	_, _ = l.buf.WriteTo(tw)
	return tw.Flush()
}

// marshalMethods is the JSON form of a row for {{json .}}: an object of
// every exported method without arguments and with one result, as docker
// renders its formatter contexts.
func marshalMethods(x any) ([]byte, error) {
	v := reflect.ValueOf(x)
	t := v.Type()
	m := make(map[string]any)
	for i := 0; i < v.NumMethod(); i++ {
		meth := t.Method(i)
		fn := v.Method(i)
		if !unicode.IsUpper(rune(meth.Name[0])) || fn.Type().NumIn() != 0 || fn.Type().NumOut() != 1 {
			continue
		}
		m[meth.Name] = fn.Call(nil)[0].Interface()
	}
	return json.Marshal(m)
}

// truncateID shortens an ID to docker's 12 hex characters, dropping any
// "sha256:" prefix.
func truncateID(id string) string { return stringid.TruncateID(id) }

// ellipsis shortens s to maxWidth display columns, ending with "…" when it
// had to cut; wide (CJK) characters count as two columns.
func ellipsis(s string, maxWidth int) string {
	if maxWidth <= 0 {
		return ""
	}
	rs := []rune(s)
	if maxWidth == 1 {
		return string(rs[0])
	}
	if len(s) == utf8.RuneCountInString(s) {
		if len(s) <= maxWidth {
			return s
		}
		return string(rs[:maxWidth-1]) + "…"
	}
	cols := make([]int, 0, len(rs))
	total := 0
	for _, r := range rs {
		switch width.LookupRune(r).Kind() {
		case width.EastAsianWide, width.EastAsianFullwidth:
			total += 2
		default:
			total++
		}
		cols = append(cols, total)
	}
	if total <= maxWidth {
		return s
	}
	for i := range cols {
		if cols[i] <= maxWidth-1 && cols[i+1] > maxWidth-1 {
			return string(rs[:i+1]) + "…"
		}
	}
	return s
}
