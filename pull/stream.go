package pull

import (
	"context"
	"io"
	"os"
	"sync"
)

// blobStream is a blob's bytes as they land in the ingest, for the layer
// appliers: they read them back from the file (the page cache) at their own
// pace. Before, the download handed them over through a pipe and so went
// at the pace of the slowest applier: a layer of many small files held one
// of the download slots for as long as it took to extract, and the layers
// queued behind it waited with the CPU idle. Now a download ends at network
// speed and frees its slot.
//
// Readers see only bytes the download has written, and the end (EOF) only
// once the whole blob is verified; a failed download fails them at once.
type blobStream struct {
	mu    sync.Mutex
	wake  chan struct{} // closed on news when a reader waits; nil when none does
	f     *os.File      // the file the bytes are in now
	avail int64         // how many bytes f holds
	final bool          // the download ended: err is its result
	err   error
	// files are closed when the last reference goes: a reader may still be
	// reading a file the download has since replaced (a restart from zero).
	files []*os.File
	refs  int // the transfer's own, and one for each open reader
}

func newBlobStream() *blobStream { return &blobStream{refs: 1} }

// setFile points the stream at f, which holds the blob's first n bytes:
// a new ingest (n is 0), one resumed, or the committed blob. Readers past n
// wait for the download to get there again.
func (s *blobStream) setFile(f *os.File, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files = append(s.files, f)
	s.f, s.avail = f, n
	s.notifyLocked()
}

// advance records that the file now holds n bytes.
func (s *blobStream) advance(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.avail = n
	s.notifyLocked()
}

// finish ends the stream: with nil, readers read to avail and then get EOF;
// with an error, they get it on their next read. Only the first call counts.
func (s *blobStream) finish(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.final {
		return
	}
	if err == nil && s.f == nil {
		err = io.ErrUnexpectedEOF // never pointed at the bytes
	}
	s.final, s.err = true, err
	s.notifyLocked()
}

func (s *blobStream) notifyLocked() {
	if s.wake != nil {
		close(s.wake)
		s.wake = nil
	}
}

// release drops a reference; the last one closes the files.
func (s *blobStream) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs--
	if s.refs > 0 {
		return
	}
	for _, f := range s.files {
		f.Close()
	}
	s.files, s.f = nil, nil
}

// reader returns a reader from the blob's first byte, or nil when the
// stream has been released (its transfer is over).
func (s *blobStream) reader(ctx context.Context) io.ReadCloser {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refs == 0 {
		return nil
	}
	s.refs++
	return &streamReader{s: s, ctx: ctx}
}

// streamReader reads a blobStream; a read waiting for the download ends
// with ctx.
type streamReader struct {
	s    *blobStream
	ctx  context.Context
	pos  int64
	once sync.Once
}

func (r *streamReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s := r.s
	for {
		s.mu.Lock()
		if s.final && s.err != nil {
			err := s.err
			s.mu.Unlock()
			return 0, err
		}
		if r.pos < s.avail {
			f, n := s.f, min(int64(len(p)), s.avail-r.pos)
			s.mu.Unlock()
			m, err := f.ReadAt(p[:n], r.pos)
			r.pos += int64(m)
			if m > 0 {
				return m, nil
			}
			if err == nil || err == io.EOF {
				// The file is shorter than the download said it was.
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if s.final {
			s.mu.Unlock()
			return 0, io.EOF
		}
		if s.wake == nil {
			s.wake = make(chan struct{})
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}

// Close gives up the reader's reference.
func (r *streamReader) Close() error {
	r.once.Do(r.s.release)
	return nil
}
