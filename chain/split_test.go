package chain

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/fixtures"
	"github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/tar/asm"
	"github.com/vbatts/tar-split/tar/storage"
)

// oddNamesTar has names encoding/json escapes (HTML characters, quotes,
// control characters, non-ASCII, invalid UTF-8), empty and hard-linked
// files, and extra zero blocks after the end marker.
func oddNamesTar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Unix(1700000000, 0)
	add := func(h *tar.Header, body string) {
		h.ModTime = mt
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if body != "" {
			if _, err := io.WriteString(tw, body); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(&tar.Header{Name: "dir/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	for i, name := range []string{
		"dir/plain.txt", "dir/a<b>&c", "dir/amp&only", `dir/quote"back\slash`, "dir/tab\tnew\nline\x01",
		"dir/ünïcødé-名前", "dir/\xff\xfeinvalid", "dir/line\u2028sep", "dir/empty",
		"dir/" + strings.Repeat("long", 40),
	} {
		body := strings.Repeat(string(rune('a'+i)), i*700)
		add(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX}, body)
	}
	add(&tar.Header{Name: "dir/link", Typeflag: tar.TypeLink, Linkname: "dir/plain.txt"}, "")
	add(&tar.Header{Name: "dir/sym", Typeflag: tar.TypeSymlink, Linkname: "../x"}, "")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	buf.Write(make([]byte, 4096))
	return buf.Bytes()
}

func fixtureTar(t *testing.T, spec fixtures.LayerSpec) []byte {
	t.Helper()
	b, err := fixtures.LayerTar(spec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func paxRecord(k, v string) string {
	size := len(k) + len(v) + 3
	size += len(fmt.Sprint(size))
	if r := fmt.Sprintf("%d %s=%s\n", size, k, v); len(r) != size {
		size = len(r)
	}
	return fmt.Sprintf("%d %s=%s\n", size, k, v)
}

// sparseTar holds a GNU PAX 1.0 sparse file (archive/tar writes none): 10000
// bytes, "hello" at 4096 and "world!!" at 9000, holes between.
func sparseTar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	pax := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", "dir/sparse") + paxRecord("GNU.sparse.realsize", "10000")
	tw.WriteHeader(&tar.Header{Name: "PaxHeaders.0/sparse", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(pax)), Format: tar.FormatUSTAR})
	tw.Write([]byte(pax))
	tw.Flush()
	// Written as a plain file: make it the PAX header it is.
	hdr := buf.Bytes()[:512]
	hdr[156] = tar.TypeXHeader
	copy(hdr[148:156], "        ")
	sum := 0
	for _, c := range hdr {
		sum += int(c)
	}
	copy(hdr[148:156], fmt.Sprintf("%06o\x00 ", sum))
	body := make([]byte, 512)
	copy(body, "2\n4096\n5\n9000\n7\n")
	body = append(body, "helloworld!!"...)
	tw.WriteHeader(&tar.Header{Name: "dir/GNUSparseFile.0/sparse", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), Format: tar.FormatUSTAR})
	tw.Write(body)
	tw.WriteHeader(&tar.Header{Name: "dir/after", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3, Format: tar.FormatUSTAR})
	tw.Write([]byte("end"))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// librarySplit records raw with tar-split's own input stream and JSON
// packer.
func librarySplit(t *testing.T, raw []byte) []byte {
	t.Helper()
	var js bytes.Buffer
	rc, done, err := asm.NewInputTarStreamWithDone(bytes.NewReader(raw), storage.NewJSONPacker(&js), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return js.Bytes()
}

// The tar-split pass records exactly what tar-split's own packer records,
// hashes the whole stream and passes every byte on.
func TestSplitterMatchesTarSplit(t *testing.T) {
	tars := map[string][]byte{
		"odd":    oddNamesTar(t),
		"sparse": sparseTar(t),
		"mixed":  fixtureTar(t, fixtures.SmallMixedLayer(7)),
		"many":   fixtureTar(t, fixtures.ManySmallFilesLayer(8, 5, 300, 200)),
		"text":   fixtureTar(t, fixtures.TextFileLayer(9, "doc/text", 1<<20)),
	}
	for name, raw := range tars {
		t.Run(name, func(t *testing.T) {
			want := librarySplit(t, raw)
			// Odd read sizes from the source, like a network stream.
			sp := newSplitter(io.MultiReader(bytes.NewReader(raw[:777]), bytes.NewReader(raw[777:])))
			got, err := io.ReadAll(sp)
			if err != nil {
				t.Fatal(err)
			}
			sp.Close()
			ts, diffID, err := sp.result()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, raw) {
				t.Fatalf("passed on %d bytes that differ from the %d of the tar", len(got), len(raw))
			}
			if want := digest.FromBytes(raw); diffID != want {
				t.Fatalf("diffID %s, want %s", diffID, want)
			}
			zr, err := gzip.NewReader(bytes.NewReader(ts))
			if err != nil {
				t.Fatal(err)
			}
			js, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(js, want) {
				t.Fatalf("tar-split record differs from tar-split's:\n%s\nwant:\n%s", js, want)
			}
		})
	}
}

// A name twice is refused, as tar-split's packer refuses it.
func TestSplitterRefusesDuplicateNames(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for range 2 {
		tw.WriteHeader(&tar.Header{Name: "a/b", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
		tw.Write([]byte("x"))
	}
	tw.Close()
	sp := newSplitter(bytes.NewReader(buf.Bytes()))
	_, rerr := io.ReadAll(sp)
	sp.Close()
	_, _, err := sp.result()
	if !errors.Is(err, storage.ErrDuplicatePath) || !errors.Is(rerr, storage.ErrDuplicatePath) {
		t.Fatalf("result %v, read %v; want %v", err, rerr, storage.ErrDuplicatePath)
	}
}

// An extractor that stops early ends the pass instead of leaving it
// blocked on a full queue.
func TestSplitterStopsWhenTheReaderCloses(t *testing.T) {
	raw := fixtureTar(t, fixtures.RandomFileLayer(3, "blob/random", 8<<20))
	sp := newSplitter(bytes.NewReader(raw))
	if _, err := io.ReadFull(sp, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	done := make(chan error, 1)
	go func() { _, _, err := sp.result(); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, errSplitStopped) {
			t.Fatalf("result after close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tar-split pass did not stop")
	}
}
