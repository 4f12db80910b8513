package mount

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// TestApplyReadsExactlyTheArchive checks that the read-ahead never takes a
// byte past the end-of-archive marker, whatever the entry sizes, header
// formats and read sizes of the source, and that content survives it.
func TestApplyReadsExactlyTheArchive(t *testing.T) {
	long := strings.Repeat("long-directory-name/", 8) + "file"
	var entries []te
	for i, n := range []int{0, 1, 511, 512, 513, 1023, 1024, 1025, 64<<10 - 1, 64 << 10, 64<<10 + 1, 200 << 10, 1<<20 + 3} {
		body := bytes.Repeat([]byte{byte('a' + i)}, n)
		entries = append(entries, tfile(fmt.Sprintf("f%02d", i), "", content(body)), tdir(fmt.Sprintf("d%02d/", i)))
	}
	entries = append(entries,
		tfile(long, "long name"),
		tsymlink("ln", strings.Repeat("t", 150)),
		thardlink("hl", long),
		tfile("last", "last"),
	)
	for _, format := range []tar.Format{tar.FormatPAX, tar.FormatGNU} {
		es := make([]te, len(entries))
		copy(es, entries)
		for i := range es {
			es[i].hdr.Format = format
		}
		archive := buildTar(t, es...)
		for _, src := range []struct {
			name string
			wrap func(io.Reader) io.Reader
		}{
			{"whole", func(r io.Reader) io.Reader { return r }},
			{"half", iotest.HalfReader},
			{"onebyte", iotest.OneByteReader},
			{"dataerr", iotest.DataErrReader},
		} {
			t.Run(fmt.Sprintf("%v/%s", format, src.name), func(t *testing.T) {
				d := openOverlay(t)
				ctx := context.Background()
				if err := d.Create(ctx, "x", ""); err != nil {
					t.Fatal(err)
				}
				// Padding like GNU tar's records, then bytes that are not ours.
				rest := append(make([]byte, 3000), "TRAILER"...)
				// One reader for both, so that a read may cross the end.
				r := src.wrap(bytes.NewReader(append(slices.Clip(archive), rest...)))
				st, err := d.ApplyDiff(ctx, "x", r, ApplyOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if st.Entries != len(es) {
					t.Errorf("Entries = %d, want %d", st.Entries, len(es))
				}
				left, _ := io.ReadAll(r)
				if !bytes.Equal(left, rest) {
					t.Fatalf("left %d bytes unread, want %d", len(left), len(rest))
				}
				for i, e := range es {
					if e.hdr.Typeflag == tar.TypeReg && i%7 == 0 {
						assertContent(t, filepath.Join(d.DiffPath("x"), e.hdr.Name), string(e.body))
					}
				}
				assertContent(t, filepath.Join(d.DiffPath("x"), "hl"), "long name")
				assertContent(t, filepath.Join(d.DiffPath("x"), "last"), "last")
			})
		}
	}
}

// TestApplyTruncatedArchive: a tar cut inside a header or a file's content
// is an error, not a partial layer. (archive/tar, like Docker, takes a cut
// between entries for the end of the archive; the caller's digest check
// catches that.)
func TestApplyTruncatedArchive(t *testing.T) {
	archive := buildTar(t, tfile("a", "a"), tfile("b", strings.Repeat("b", 5000)))
	for _, cut := range []int{100, 1500, 1600, 6000} {
		d := openOverlay(t)
		ctx := context.Background()
		if err := d.Create(ctx, "x", ""); err != nil {
			t.Fatal(err)
		}
		_, err := d.ApplyDiff(ctx, "x", bytes.NewReader(archive[:cut]), ApplyOptions{})
		if err == nil {
			t.Errorf("cut at %d: no error", cut)
		}
		if got := names(t, d.DiffPath("x")); len(got) != 0 {
			t.Errorf("cut at %d: left %v", cut, got)
		}
	}
}
