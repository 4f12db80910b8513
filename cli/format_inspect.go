package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/template"
)

// inspectGetter fetches one object: its decoded form (what templates
// see) and the daemon's JSON bytes (what is printed by default, so fields
// this client does not know still show).
type inspectGetter func(ref string) (typed any, raw []byte, err error)

// writeInspect prints the objects named by refs the way `docker inspect`
// does: by default a JSON array of the daemon's documents indented by four
// spaces; with "json" the same array compacted; otherwise the template
// once per object. Objects that cannot be fetched are skipped and their
// errors returned together after the output (exit 1).
func writeInspect(out io.Writer, refs []string, format string, get inspectGetter) error {
	var ins inspector
	switch format {
	case "":
		ins = &jsonInspector{out: out, indent: true}
	case jsonFormatKey:
		ins = &jsonInspector{out: out}
	default:
		t, err := parseTemplate(format)
		if err != nil {
			return statusError{status: err.Error(), code: 64}
		}
		ins = &templateInspector{out: out, tmpl: t}
	}
	var errs []error
	for _, ref := range refs {
		typed, raw, err := get(ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := ins.inspect(typed, raw); err != nil {
			errs = append(errs, err)
		}
	}
	_ = ins.flush()
	if err := errors.Join(errs...); err != nil {
		return statusError{status: err.Error(), code: 1}
	}
	return nil
}

type inspector interface {
	inspect(typed any, raw []byte) error
	flush() error
}

type templateInspector struct {
	out  io.Writer
	tmpl *template.Template
	buf  bytes.Buffer
}

// inspect runs the template on the decoded object; when that fails (a
// field the client's types lack), it retries on the raw JSON, where a
// missing key is an error rather than "<no value>".
func (i *templateInspector) inspect(typed any, raw []byte) error {
	var b bytes.Buffer
	if err := i.tmpl.Execute(&b, typed); err != nil {
		if raw == nil {
			return fmt.Errorf("template parsing error: %w", err)
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("unable to read inspect data: %w", err)
		}
		b.Reset()
		if err := i.tmpl.Option("missingkey=error").Execute(&b, v); err != nil {
			return fmt.Errorf("template parsing error: %w", err)
		}
	}
	i.buf.Write(b.Bytes())
	i.buf.WriteByte('\n')
	return nil
}

func (i *templateInspector) flush() error {
	if i.buf.Len() == 0 {
		_, err := io.WriteString(i.out, "\n")
		return err
	}
	_, err := i.buf.WriteTo(i.out)
	return err
}

type jsonInspector struct {
	out    io.Writer
	indent bool
	typed  []any
	raws   [][]byte
}

func (j *jsonInspector) inspect(typed any, raw []byte) error {
	if raw != nil {
		j.raws = append(j.raws, raw)
	} else {
		j.typed = append(j.typed, typed)
	}
	return nil
}

func (j *jsonInspector) flush() error {
	if len(j.typed) == 0 && len(j.raws) == 0 {
		_, err := io.WriteString(j.out, "[]\n")
		return err
	}
	var out bytes.Buffer
	if len(j.raws) > 0 {
		all := append([]byte{'['}, bytes.Join(j.raws, []byte{','})...)
		all = append(all, ']')
		var err error
		if j.indent {
			err = json.Indent(&out, all, "", "    ")
		} else {
			err = json.Compact(&out, all)
		}
		if err != nil {
			return err
		}
	} else {
		var b []byte
		var err error
		if j.indent {
			b, err = json.MarshalIndent(j.typed, "", "    ")
		} else {
			b, err = json.Marshal(j.typed)
		}
		if err != nil {
			return err
		}
		out.Write(b)
	}
	out.WriteByte('\n')
	_, err := out.WriteTo(j.out)
	return err
}
