package mount

import (
	"archive/tar"
	"io"
	"strings"
)

const (
	// readAheadSize is the read-ahead buffer of one ApplyDiff.
	readAheadSize = 128 << 10
	// directReadMin is the request size from which reading straight into
	// the caller's buffer beats a copy out of ours.
	directReadMin = 64 << 10
	blockSize     = 512
)

// aheadReader feeds archive/tar with few large reads without ever reading
// past the end of the archive (the caller of ApplyDiff drains the rest
// itself). archive/tar asks for one 512-byte block per header, then the
// content, then the padding: three reads a file. aheadReader may read
// further than asked, but only up to limit, a stream offset the extractor
// raises from each header: the entry's content and padding must follow it,
// and after them at least the 1024-byte end-of-archive marker.
type aheadReader struct {
	r          io.Reader
	buf        []byte
	start, end int   // unread bytes are buf[start:end]
	err        error // from the read that filled buf, returned once it is drained
	pos        int64 // bytes handed out
	limit      int64
}

func newAheadReader(r io.Reader, buf []byte) *aheadReader {
	// Any archive, even an empty one, has its 1024-byte end marker.
	return &aheadReader{r: r, buf: buf, limit: 2 * blockSize}
}

func (a *aheadReader) Read(p []byte) (int, error) {
	if a.start == a.end {
		if a.err != nil {
			err := a.err
			a.err = nil
			return 0, err
		}
		ahead := a.limit - a.pos
		if len(p) >= directReadMin || int64(len(p)) >= ahead {
			n, err := a.r.Read(p)
			a.pos += int64(n)
			return n, err
		}
		n, err := a.r.Read(a.buf[:min(int64(len(a.buf)), ahead)])
		a.start, a.end, a.err = 0, n, err
		if n == 0 {
			a.err = nil
			return 0, err
		}
	}
	n := copy(p, a.buf[a.start:a.end])
	a.start += n
	a.pos += int64(n)
	return n, nil
}

// sawHeader raises the limit after archive/tar returned hdr: its content,
// its padding and the end marker at least are still to come. Sparse
// entries store less than hdr.Size, so they raise nothing.
func (a *aheadReader) sawHeader(hdr *tar.Header) {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return
		}
	}
	size := hdr.Size
	switch hdr.Typeflag {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		// archive/tar skips whatever size these claim as no content.
		size = 0
	}
	pad := -size & (blockSize - 1)
	if l := a.pos + size + pad + 2*blockSize; l > a.limit {
		a.limit = l
	}
}
