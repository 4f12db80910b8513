package pull

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/cas"
	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
)

// maxRetries is how many times a failing blob download is tried again
// before the pull fails (dockerd: 5).
const maxRetries = 5

// blobIdleTimeout is how long a blob body may deliver nothing before the
// connection is given up and resumed.
const blobIdleTimeout = 2 * time.Minute

// copyBufferSize is the read size of a blob body.
const copyBufferSize = 256 << 10

// blobDesc is a blob as a manifest describes it.
type blobDesc struct {
	Digest    digest.Digest
	Size      int64
	MediaType types.MediaType
	URLs      []string // foreign layers: where to fetch from first
}

// blobSource is one place a blob can be fetched from.
type blobSource interface {
	// open GETs the blob from offset (a Range request when above zero)
	// and reports the blob offset the body starts at.
	open(ctx context.Context, desc blobDesc, offset int64) (io.ReadCloser, int64, error)
	String() string
}

// registrySource fetches from one endpoint, connecting on first use so
// fallback endpoints cost nothing until they are needed.
type registrySource struct {
	name    string
	once    sync.Once
	connect func(ctx context.Context) (*repoClient, error)
	c       *repoClient
	err     error
}

func connectedSource(c *repoClient) *registrySource {
	s := &registrySource{name: c.ep.String(), c: c}
	s.once.Do(func() {})
	return s
}

func (s *registrySource) String() string { return s.name }

func (s *registrySource) open(ctx context.Context, desc blobDesc, offset int64) (io.ReadCloser, int64, error) {
	s.once.Do(func() { s.c, s.err = s.connect(ctx) })
	if s.err != nil {
		return nil, 0, s.err
	}
	return s.c.openBlob(ctx, desc.Digest, offset, desc.Size)
}

// urlSource fetches a foreign layer from a URL its descriptor lists.
type urlSource struct {
	client *http.Client
	url    string
}

func (s *urlSource) String() string { return s.url }

func (s *urlSource) open(ctx context.Context, desc blobDesc, offset int64) (io.ReadCloser, int64, error) {
	return getRange(ctx, s.client, s.url, offset, desc.Size)
}

// phase is how far a transfer got.
type phase int32

const (
	phaseQueued phase = iota
	phaseDownloading
	phaseVerifying
	phaseDone
)

// transferManager is the daemon-wide set of blob downloads: one transfer
// per blob digest however many pulls want it, and one limit on how many
// download at once.
type transferManager struct {
	p     *Puller
	limit *limiter

	mu     sync.Mutex
	active map[digest.Digest]*transfer
}

func newTransferManager(p *Puller, limit int) *transferManager {
	return &transferManager{p: p, limit: newLimiter(limit), active: map[digest.Digest]*transfer{}}
}

// transfer downloads one blob into the store; the layer appliers read its
// bytes back from the ingest as they land (stream).
type transfer struct {
	m       *transferManager
	desc    blobDesc
	sources []blobSource
	// ctx is not any pull's: the transfer outlives the pull that started
	// it while others watch, and ends when the last watcher leaves.
	ctx    context.Context
	cancel context.CancelFunc

	current atomic.Int64
	waited  atomic.Bool

	stream *blobStream
	// ticket is the transfer's place in the download queue, taken when it
	// was asked for.
	ticket *ticket

	mu       sync.Mutex
	phase    phase
	changed  chan struct{} // closed and replaced on every phase change
	watchers int
	err      error
	done     chan struct{}
}

// watcher is one pull's interest in a transfer.
type watcher struct {
	t    *transfer
	once sync.Once
	stop func() bool
}

// watch joins the transfer of desc, starting it when none runs. With
// stream, it also returns a reader of the blob's bytes, from the first, as
// they arrive (nil when the transfer has just ended: the caller then reads
// the committed blob); the caller closes it. The watch ends when ctx ends or
// Release is called.
func (m *transferManager) watch(ctx context.Context, desc blobDesc, sources []blobSource, stream bool) (w *watcher, rc io.ReadCloser) {
	m.mu.Lock()
	t := m.active[desc.Digest]
	start := false
	if t == nil {
		tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		t = &transfer{m: m, desc: desc, sources: sources, ctx: tctx, cancel: cancel,
			stream: newBlobStream(), ticket: m.limit.Reserve(), changed: make(chan struct{}), done: make(chan struct{})}
		m.active[desc.Digest] = t
		start = true
	}
	t.mu.Lock()
	t.watchers++
	t.mu.Unlock()
	if stream {
		if r := t.stream.reader(ctx); r != nil {
			rc = r
		}
	}
	m.mu.Unlock()
	if start {
		go t.run()
	}
	w = &watcher{t: t}
	w.stop = context.AfterFunc(ctx, w.leave)
	return w, rc
}

// Release ends the watch; the transfer stops when nobody watches it any
// more and it has not finished.
func (w *watcher) Release() {
	w.stop()
	w.leave()
}

func (w *watcher) leave() {
	w.once.Do(func() {
		t := w.t
		t.m.mu.Lock()
		defer t.m.mu.Unlock()
		t.mu.Lock()
		defer t.mu.Unlock()
		t.watchers--
		if t.watchers == 0 && t.phase != phaseDone {
			// A new pull of this blob starts afresh (resuming the ingest
			// once this one has let go of it).
			if t.m.active[t.desc.Digest] == t {
				delete(t.m.active, t.desc.Digest)
			}
			t.cancel()
		}
	})
}

// Wait blocks until the transfer ends or ctx does.
func (w *watcher) Wait(ctx context.Context) error {
	select {
	case <-w.t.done:
		return w.t.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// state is a snapshot for progress reporting.
func (t *transfer) state() (phase, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.phase, t.changed
}

func (t *transfer) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

func (t *transfer) setPhase(ph phase) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.phase = ph
	t.notifyLocked()
}

func (t *transfer) run() {
	err := t.download()
	if err != nil && t.ctx.Err() == nil {
		t.m.p.log.Debug("blob download failed", "digest", t.desc.Digest, "err", err)
	}
	t.m.mu.Lock()
	if t.m.active[t.desc.Digest] == t {
		delete(t.m.active, t.desc.Digest)
	}
	t.m.mu.Unlock()
	// Readers see the end: EOF after the last byte, or the error (a
	// stream finished before keeps its first result).
	t.stream.finish(err)
	t.stream.release()
	t.mu.Lock()
	t.err = err
	t.phase = phaseDone
	t.notifyLocked()
	t.mu.Unlock()
	close(t.done)
	t.cancel()
}

// ingestRef names the ingest of a blob: stable across restarts, so a
// download cut by a daemon restart resumes from what is on disk.
func ingestRef(d digest.Digest) string { return "pull-" + d.Encoded() }

func (t *transfer) writer(ctx context.Context) (*cas.Writer, error) {
	return t.m.p.store.CAS().Blobs.Writer(ctx, ingestRef(t.desc.Digest), cas.WithExpected(t.desc.Digest, t.expectedSize()))
}

func (t *transfer) expectedSize() int64 {
	if t.desc.Size > 0 {
		return t.desc.Size
	}
	return -1
}

func (t *transfer) download() error {
	ctx := t.ctx
	defer t.ticket.Release()
	blobs := t.m.p.store.CAS().Blobs
	if blobs.Has(ctx, t.desc.Digest) {
		return t.fromBlob(ctx)
	}
	onWait := func() {
		t.waited.Store(true)
		t.mu.Lock()
		t.notifyLocked()
		t.mu.Unlock()
	}
	if err := t.ticket.Wait(ctx, onWait); err != nil {
		return err
	}

	w, err := t.writer(ctx)
	if errdefs.IsAlreadyExists(err) {
		return t.fromBlob(ctx)
	}
	if err != nil {
		return fmt.Errorf("download %s: %w", t.desc.Digest, err)
	}
	// w may be replaced (a restart from zero); whatever it is at the end
	// keeps its partial data for a resume unless it was discarded.
	defer func() { w.Close() }()
	// What an earlier, interrupted download left is readable at once.
	if err := t.follow(w); err != nil {
		return err
	}
	t.current.Store(w.Offset())
	t.setPhase(phaseDownloading)

	if err := t.fetch(ctx, &w); err != nil {
		var me *mismatchError
		if errors.As(err, &me) {
			w.Discard()
		}
		return err
	}
	if size := t.desc.Size; size > 0 && w.Offset() != size {
		w.Discard()
		return &mismatchError{dgst: t.desc.Digest, size: size, gotSize: w.Offset()}
	}
	if got := w.Digest(); got != t.desc.Digest {
		w.Discard()
		return &mismatchError{dgst: t.desc.Digest, got: got}
	}
	t.setPhase(phaseVerifying)
	// The content is verified: the appliers may read to the end while the
	// blob is synced and published.
	t.stream.finish(nil)
	if err := w.Commit(ctx); err != nil && !errdefs.IsAlreadyExists(err) {
		return fmt.Errorf("download %s: %w", t.desc.Digest, err)
	}
	return nil
}

// follow points the stream at what w writes.
func (t *transfer) follow(w *cas.Writer) error {
	f, err := w.Follow()
	if err != nil {
		return &permanentError{fmt.Errorf("download %s: read back ingest: %w", t.desc.Digest, err)}
	}
	t.stream.setFile(f, w.Offset())
	return nil
}

// fromBlob serves the stream from the committed blob.
func (t *transfer) fromBlob(ctx context.Context) error {
	t.current.Store(t.desc.Size)
	f, err := t.m.p.store.CAS().Blobs.Open(ctx, t.desc.Digest)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	t.stream.setFile(f, fi.Size())
	t.stream.finish(nil)
	return nil
}

// permanentError is a failure no retry can fix (the local disk).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// fetch downloads the rest of the blob into *wp, trying each source in
// turn, retrying transient failures with backoff and resuming with Range
// from what the ingest holds.
func (t *transfer) fetch(ctx context.Context, wp **cas.Writer) error {
	size := t.desc.Size
	buf := make([]byte, copyBufferSize)
	var lastErr error
	for _, src := range t.sources {
		failures := 0
		for {
			w := *wp
			if size > 0 && w.Offset() >= size {
				return nil
			}
			progressed, err := t.attempt(ctx, src, wp, buf)
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var me *mismatchError
			var pe *permanentError
			if errors.As(err, &me) || errors.As(err, &pe) {
				return err
			}
			lastErr = err
			if !retryable(err) {
				t.m.p.log.Debug("blob source failed", "digest", t.desc.Digest, "source", src, "err", err)
				break
			}
			if progressed > 0 {
				// A connection cut mid-blob: resume at once.
				failures = 0
				t.m.p.log.Debug("resume blob", "digest", t.desc.Digest, "offset", (*wp).Offset(), "err", err)
				continue
			}
			failures++
			if failures > maxRetries {
				break
			}
			delay := t.m.p.backoff << (failures - 1)
			t.m.p.log.Debug("retry blob", "digest", t.desc.Digest, "source", src, "in", delay, "err", err)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if lastErr == nil {
		lastErr = errors.New("no source to fetch from")
	}
	return fmt.Errorf("download %s: %w", t.desc.Digest, translateHTTPError(lastErr))
}

// attempt is one GET: it resumes from the ingest's offset and copies what
// comes into the ingest, where the stream's readers find it.
func (t *transfer) attempt(ctx context.Context, src blobSource, wp **cas.Writer, buf []byte) (int64, error) {
	w := *wp
	// A connection that stops delivering is cut, so the retry resumes it;
	// only time spent waiting on the network counts.
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stalled atomic.Bool
	idle := time.AfterFunc(blobIdleTimeout, func() {
		stalled.Store(true)
		cancel()
	})
	defer idle.Stop()
	body, start, err := src.open(actx, t.desc, w.Offset())
	if err != nil {
		return 0, err
	}
	defer body.Close()
	if start != w.Offset() {
		if start != 0 {
			return 0, fmt.Errorf("%s served blob %s from offset %d, asked %d", src, t.desc.Digest, start, w.Offset())
		}
		// The registry ignored the Range: take the whole body, hashing
		// from zero again; readers wait until it is past what they have.
		w.Discard()
		nw, err := t.writer(ctx)
		if err != nil {
			return 0, &permanentError{fmt.Errorf("download %s: %w", t.desc.Digest, err)}
		}
		*wp, w = nw, nw
		if err := t.follow(nw); err != nil {
			return 0, err
		}
		t.current.Store(0)
	}
	size := t.desc.Size
	var copied int64
	for {
		idle.Reset(blobIdleTimeout)
		n, rerr := body.Read(buf)
		idle.Stop()
		if n > 0 {
			pos := w.Offset()
			if size > 0 && pos+int64(n) > size {
				return copied, &mismatchError{dgst: t.desc.Digest, size: size, gotSize: pos + int64(n)}
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return copied, &permanentError{fmt.Errorf("write ingest of %s: %w", t.desc.Digest, err)}
			}
			t.stream.advance(w.Offset())
			copied += int64(n)
			t.current.Store(w.Offset())
		}
		if rerr == io.EOF {
			if size > 0 && w.Offset() < size {
				return copied, io.ErrUnexpectedEOF
			}
			return copied, nil
		}
		if rerr != nil {
			if stalled.Load() && ctx.Err() == nil {
				rerr = fmt.Errorf("blob %s: no data for %s", t.desc.Digest, blobIdleTimeout)
			}
			return copied, rerr
		}
	}
}
