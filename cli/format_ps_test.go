package cli

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
)

// On text where every character is one column wide, alignColumns is
// text/tabwriter with docker's settings.
func TestAlignColumnsIsTabwriterForNarrowText(t *testing.T) {
	for _, text := range []string{
		"CONTAINER ID\tIMAGE\tNAMES\nabc\tbusybox\tweb\nabcdef012345\tregistry.example/very/long/name:tag\tx\n",
		"A\tB\n\na\tb\tc\td\nshort\n\tlonger cell\tz\n",
		"no tabs at all\nsecond line",
		"trailing\t\n\t\n",
		"",
	} {
		var want bytes.Buffer
		tw := tabwriter.NewWriter(&want, 10, 1, 3, ' ', 0)
		_, _ = tw.Write([]byte(text))
		_ = tw.Flush()
		if got := alignColumns(text, 10, 3); got != want.String() {
			t.Errorf("%q:\ngot  %q\nwant %q", text, got, want.String())
		}
	}
}

func TestAlignColumnsCountsTerminalColumns(t *testing.T) {
	got := alignColumns("NAME\tX\n日本語\t1\nabc\t2\n", 0, 2)
	want := "NAME    X\n日本語  1\nabc     2\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if w := displayWidth("a日é…\u0301"); w != 5 {
		t.Errorf("displayWidth = %d, want 5", w)
	}
}

func TestPsTemplateUsesSize(t *testing.T) {
	for format, want := range map[string]bool{
		"{{.Names}}":                  false,
		"table {{.ID}}\t{{.Size}}":    true,
		"{{if .Size}}x{{end}}":        true,
		"{{json .}}":                  true, // json renders every field
		"{{.Names}} {{.Label \"a\"}}": false,
	} {
		got, err := psTemplateUsesSize(format)
		if err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", format, got, err, want)
		}
	}
	if _, err := psTemplateUsesSize("{{.Names"); err == nil || !strings.HasPrefix(err.Error(), "failed to parse template: ") {
		t.Errorf("bad template: %v", err)
	}
	if _, err := psTemplateUsesSize("{{.Nope}}"); err == nil || !strings.HasPrefix(err.Error(), "failed to execute template: ") {
		t.Errorf("unknown field: %v", err)
	}
}

func TestNaturalLess(t *testing.T) {
	names := []string{"vol10", "vol9", "a", "vol009", "Vol1", "vol1", "b2", "b10", "b02", "vol"}
	slices.SortFunc(names, func(x, y string) int {
		switch {
		case naturalLess(x, y):
			return -1
		case naturalLess(y, x):
			return 1
		}
		return 0
	})
	want := []string{"Vol1", "a", "b2", "b02", "b10", "vol", "vol1", "vol9", "vol009", "vol10"}
	if !slices.Equal(names, want) {
		t.Errorf("got %v\nwant %v", names, want)
	}
}
