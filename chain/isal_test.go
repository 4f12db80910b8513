package chain

import (
	"bytes"
	"compress/gzip"
	"errors"
	"hash/crc64"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// testPayload is half random, half repetitive text, so gzip emits stored,
// fixed and dynamic blocks.
func testPayload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b[:n/2] {
		b[i] = byte(r.Uint32())
	}
	words := []string{"layer ", "berth ", "overlay ", "diff ", "chain\n"}
	for i := n / 2; i < n; {
		i += copy(b[i:], words[r.IntN(len(words))])
	}
	return b
}

func gzipped(t *testing.T, level int, hdr gzip.Header, data ...[]byte) []byte {
	t.Helper()
	var out bytes.Buffer
	for _, d := range data {
		w, err := gzip.NewWriterLevel(&out, level)
		if err != nil {
			t.Fatal(err)
		}
		w.Header = hdr
		if _, err := w.Write(d); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out.Bytes()
}

// readAllWith inflates with our reader, reading through reads of at most
// chunk bytes, from a source that hands out src in pieces of piece bytes.
func readAllWith(t *testing.T, src []byte, piece, chunk int) ([]byte, error) {
	t.Helper()
	var in io.Reader = bytes.NewReader(src)
	if piece > 0 {
		in = iotest.HalfReader(in)
		if piece == 1 {
			in = iotest.OneByteReader(bytes.NewReader(src))
		}
	}
	z, err := newGzipReader(in)
	if err != nil {
		return nil, err
	}
	defer z.Close()
	var out bytes.Buffer
	buf := make([]byte, chunk)
	for {
		n, err := z.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

func TestGzipReaderMatchesCompressGzip(t *testing.T) {
	big := testPayload(3<<20, 1)
	cases := []struct {
		name  string
		level int
		hdr   gzip.Header
		data  [][]byte
	}{
		{"empty", gzip.DefaultCompression, gzip.Header{}, [][]byte{{}}},
		{"one byte", gzip.DefaultCompression, gzip.Header{}, [][]byte{{'x'}}},
		{"default", gzip.DefaultCompression, gzip.Header{}, [][]byte{big}},
		{"best speed", gzip.BestSpeed, gzip.Header{}, [][]byte{big}},
		{"stored", gzip.NoCompression, gzip.Header{}, [][]byte{big}},
		{"huffman only", gzip.HuffmanOnly, gzip.Header{}, [][]byte{big}},
		{"header fields", gzip.BestCompression, gzip.Header{Name: "layer.tar", Comment: "a comment", Extra: []byte("xx\x04\x00abcd")}, [][]byte{big[:100000]}},
		{"two members", gzip.DefaultCompression, gzip.Header{}, [][]byte{big[:700000], big[700000:]}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := gzipped(t, c.level, c.hdr, c.data...)
			want := bytes.Join(c.data, nil)
			for _, shape := range []struct{ piece, chunk int }{{0, 1 << 20}, {0, 512}, {2, 4096}, {1, 7}} {
				if len(src) > 200000 && shape.piece == 1 {
					continue // byte-at-a-time over megabytes only slows the test
				}
				got, err := readAllWith(t, src, shape.piece, shape.chunk)
				if err != nil {
					t.Fatalf("piece %d chunk %d: %v", shape.piece, shape.chunk, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("piece %d chunk %d: got %d bytes, want %d (equal prefix %v)", shape.piece, shape.chunk, len(got), len(want), bytes.HasPrefix(want, got))
				}
			}
		})
	}
}

// TestGzipReaderBadInput: every damaged stream fails, and with
// compress/gzip's wording where Docker users would see it.
func TestGzipReaderBadInput(t *testing.T) {
	good := gzipped(t, gzip.DefaultCompression, gzip.Header{}, testPayload(1<<20, 2))
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name    string
		src     []byte
		wantErr error  // exact error, when set
		wantMsg string // else a substring of the message
	}{
		{"truncated in the data", good[:len(good)/2], io.ErrUnexpectedEOF, ""},
		{"truncated in the trailer", good[:len(good)-3], io.ErrUnexpectedEOF, ""},
		{"bad crc", mutate(func(b []byte) []byte { b[len(b)-8] ^= 0xff; return b }), errGzipChecksum, ""},
		{"bad size", mutate(func(b []byte) []byte { b[len(b)-1] ^= 0x01; return b }), errGzipChecksum, ""},
		{"garbage after the member", append(bytes.Clone(good), "not gzip at all"...), errGzipHeader, ""},
		{"bad method", mutate(func(b []byte) []byte { b[2] = 7; return b }), errGzipHeader, ""},
		// The first block header says BTYPE=11, which deflate reserves.
		{"reserved block type", mutate(func(b []byte) []byte { b[10] = 0x07; return b }), nil, "flate: corrupt input"},
		{"corrupt deflate data", mutate(func(b []byte) []byte {
			for i := 100; i < 400; i++ {
				b[i] = 0xff
			}
			return b
		}), nil, "gzip: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The reference must fail too: the case really is damaged.
			zr, err := gzip.NewReader(bytes.NewReader(c.src))
			if err == nil {
				_, err = io.Copy(io.Discard, zr)
			}
			if err == nil {
				t.Fatal("compress/gzip accepts this input; the case is wrong")
			}
			_, got := readAllWith(t, c.src, 0, 64<<10)
			switch {
			case got == nil:
				t.Fatalf("no error (compress/gzip says %v)", err)
			case c.wantErr != nil && !errors.Is(got, c.wantErr):
				t.Fatalf("error %v, want %v (compress/gzip says %v)", got, c.wantErr, err)
			case c.wantErr == nil && !bytes.Contains([]byte(got.Error()), []byte(c.wantMsg)):
				t.Fatalf("error %v, want it to mention %q", got, c.wantMsg)
			}
			if c.wantErr != nil && c.wantErr != io.ErrUnexpectedEOF && got.Error() != err.Error() {
				t.Fatalf("wording %q, compress/gzip's %q", got, err)
			}
		})
	}
}

func TestDecompressUsesGzipReader(t *testing.T) {
	want := testPayload(200000, 3)
	rc, comp, err := Decompress(bytes.NewReader(gzipped(t, gzip.BestSpeed, gzip.Header{}, want)))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if comp != Gzip {
		t.Fatalf("compression %v", comp)
	}
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, err %v", len(got), err)
	}
}

func TestCRC64ISOMatchesHashCRC64(t *testing.T) {
	data := testPayload(1<<20+123, 4)
	want := crc64.New(crc64.MakeTable(crc64.ISO))
	got := newCRC64ISO()
	r := rand.New(rand.NewPCG(5, 5))
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1+r.IntN(70000))
		want.Write(rest[:n])
		got.Write(rest[:n])
		rest = rest[n:]
		if got.Sum64() != want.Sum64() {
			t.Fatalf("after %d bytes: %x, want %x", len(data)-len(rest), got.Sum64(), want.Sum64())
		}
	}
	if !bytes.Equal(got.Sum([]byte("p")), want.Sum([]byte("p"))) {
		t.Fatalf("Sum %x, want %x", got.Sum(nil), want.Sum(nil))
	}
	got.Reset()
	want.Reset()
	got.Write(nil)
	if got.Sum64() != want.Sum64() || got.Size() != want.Size() {
		t.Fatal("reset or empty write differs")
	}
}
