package chain

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/berth-dev/berth/cas"
	"github.com/berth-dev/berth/mount"
	"github.com/containerd/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	"github.com/vbatts/tar-split/archive/tar"
	"github.com/vbatts/tar-split/tar/asm"
	"github.com/vbatts/tar-split/tar/storage"
)

// Layer is a committed layer.
type Layer struct {
	ChainID digest.Digest
	DiffID  digest.Digest
	Parent  digest.Digest
	Size    int64
	CacheID string
}

// ChainIDs computes the ChainID of every prefix of a diffID list.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	return identity.ChainIDs(append([]digest.Digest(nil), diffIDs...))
}

func chainOf(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return identity.ChainID([]digest.Digest{parent, diffID})
}

func newCacheID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// Stage is one layer on its way into the store: its driver directory exists,
// its content is applied by exactly one caller (Claim), and it is committed
// after its parent. Stages of one chain ID are shared between concurrent
// callers, so a layer wanted by two pulls is extracted once.
type Stage struct {
	s           *Store
	ChainID     digest.Digest
	DiffID      digest.Digest
	cacheID     string
	parentChain digest.Digest
	parentStage *Stage

	claimOnce sync.Once
	claimed   bool
	applied   chan struct{}
	applyErr  error
	size      int64
	tarSplit  []byte
	created   bool

	commitMu  sync.Mutex
	committed *Layer
	users     int // guarded by s.stagesMu
}

// StageChain prepares stages for diffIDs stacked on the committed layer
// parent ("" for none). Callers skip layers already present first. Each
// stage must be Released by every caller that got it.
func (s *Store) StageChain(ctx context.Context, parent digest.Digest, diffIDs []digest.Digest) ([]*Stage, error) {
	parentCache := ""
	if parent != "" {
		l, err := s.Layer(ctx, parent)
		if err != nil {
			return nil, fmt.Errorf("stage on %s: %w", parent, err)
		}
		parentCache = l.CacheID
	}
	stages := make([]*Stage, 0, len(diffIDs))
	chainID := parent
	var prev *Stage
	s.stagesMu.Lock()
	defer s.stagesMu.Unlock()
	for _, diffID := range diffIDs {
		if err := diffID.Validate(); err != nil {
			s.releaseLocked(ctx, stages)
			return nil, fmt.Errorf("stage layer: diff id %q: %w", diffID, errdefs.ErrInvalidArgument)
		}
		chainID = chainOf(chainID, diffID)
		st, ok := s.stages[chainID]
		if !ok {
			st = &Stage{s: s, ChainID: chainID, DiffID: diffID, cacheID: newCacheID(),
				parentChain: parent, parentStage: prev, applied: make(chan struct{})}
			if prev != nil {
				st.parentChain = prev.ChainID
			}
			if s.driver.IndependentLayers() {
				pc := parentCache
				if prev != nil {
					pc = prev.cacheID
				}
				if err := s.driver.Create(ctx, st.cacheID, pc); err != nil {
					s.releaseLocked(ctx, stages)
					return nil, fmt.Errorf("stage layer %s: %w", chainID, err)
				}
				st.created = true
			}
			s.stages[chainID] = st
		}
		st.users++
		stages = append(stages, st)
		prev = st
	}
	return stages, nil
}

// Claim reports whether the caller is the one to Apply this stage's content;
// the others Wait for it.
func (st *Stage) Claim() bool {
	won := false
	st.claimOnce.Do(func() { st.claimed, won = true, true })
	return won
}

// Wait blocks until the stage's content is applied (by whoever claimed it).
func (st *Stage) Wait(ctx context.Context) error {
	select {
	case <-st.applied:
		return st.applyErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Apply extracts the layer stream (gzip, zstd or plain tar) into the stage's
// directory in one pass, computing the diffID and the tar-split metadata.
// The diffID must match the one the stage was made for. Only the caller that
// won Claim may call it.
func (st *Stage) Apply(ctx context.Context, r io.Reader) (err error) {
	defer func() {
		st.applyErr = err
		close(st.applied)
	}()
	if !st.s.driver.IndependentLayers() {
		parentCache := ""
		if st.parentStage != nil {
			// vfs starts as a copy of its parent, so it waits for it.
			if err := st.parentStage.Wait(ctx); err != nil {
				return fmt.Errorf("layer %s: parent: %w", st.ChainID, err)
			}
			parentCache = st.parentStage.cacheID
		} else if st.parentChain != "" {
			l, err := st.s.Layer(ctx, st.parentChain)
			if err != nil {
				return err
			}
			parentCache = l.CacheID
		}
		if err := st.s.driver.Create(ctx, st.cacheID, parentCache); err != nil {
			return fmt.Errorf("layer %s: %w", st.ChainID, err)
		}
		st.created = true
	}
	res, err := st.s.applyStream(ctx, st.cacheID, r)
	if err != nil {
		return fmt.Errorf("layer %s: %w", st.ChainID, err)
	}
	if res.diffID != st.DiffID {
		return fmt.Errorf("layer %s: %w: content has diff id %s, expected %s", st.ChainID, errdefs.ErrInvalidArgument, res.diffID, st.DiffID)
	}
	st.size, st.tarSplit = res.size, res.tarSplit
	return nil
}

type applyResult struct {
	diffID   digest.Digest
	size     int64
	tarSplit []byte
}

// applyStream is the one pass: decompress → hash → tar-split → driver.
func (s *Store) applyStream(ctx context.Context, cacheID string, r io.Reader) (applyResult, error) {
	plain, _, err := Decompress(r)
	if err != nil {
		return applyResult{}, err
	}
	defer plain.Close()
	sp := newSplitter(plain)
	stats, applyErr := s.driver.ApplyDiff(ctx, cacheID, sp, mount.ApplyOptions{AllowDeviceNodes: s.allowDevices})
	if applyErr == nil {
		// The driver stops at the end-of-archive marker; the padding after
		// it is part of the diffID and of the tar-split record.
		_, applyErr = io.Copy(io.Discard, sp)
	}
	sp.Close()
	tarSplit, diffID, splitErr := sp.result()
	if applyErr != nil {
		return applyResult{}, applyErr
	}
	if splitErr != nil {
		return applyResult{}, fmt.Errorf("read layer tar: %w", splitErr)
	}
	if err := s.syncer.sync(func() error { return s.driver.Sync(ctx, cacheID) }); err != nil {
		return applyResult{}, fmt.Errorf("sync layer: %w", err)
	}
	return applyResult{diffID: diffID, size: stats.Size, tarSplit: tarSplit}, nil
}

// Commit records the stage as a layer, after its parent, in one transaction
// together with whatever extra records the caller adds (distribution maps).
// Committing a stage twice returns the first result.
func (st *Stage) Commit(ctx context.Context, extra func(tx *cas.Tx) error) (Layer, error) {
	st.commitMu.Lock()
	defer st.commitMu.Unlock()
	if st.committed != nil {
		if extra != nil {
			if err := st.s.cas.Index.Update(ctx, extra); err != nil {
				return Layer{}, err
			}
		}
		return *st.committed, nil
	}
	if err := st.Wait(ctx); err != nil {
		return Layer{}, err
	}
	if st.parentStage != nil && !st.parentStage.isCommitted() {
		return Layer{}, fmt.Errorf("commit layer %s: parent %s is not committed yet", st.ChainID, st.parentChain)
	}
	l := Layer{ChainID: st.ChainID, DiffID: st.DiffID, Parent: st.parentChain, Size: st.size, CacheID: st.cacheID}
	l, err := st.s.commitLayer(ctx, l, st.tarSplit, extra)
	if err != nil {
		return Layer{}, err
	}
	st.committed = &l
	return l, nil
}

func (st *Stage) isCommitted() bool {
	st.commitMu.Lock()
	defer st.commitMu.Unlock()
	return st.committed != nil
}

// commitLayer writes the record; when the chain ID is already recorded
// (registered meanwhile by another path) the existing layer wins and the
// new directory is dropped.
func (s *Store) commitLayer(ctx context.Context, l Layer, tarSplit []byte, extra func(tx *cas.Tx) error) (Layer, error) {
	var existing *Layer
	err := s.cas.Index.Update(ctx, func(tx *cas.Tx) error {
		existing = nil
		ldb := tx.LayerDB()
		if rec, err := ldb.Get(l.ChainID, false); err == nil && rec.State == "" {
			e := recordToLayer(rec)
			existing = &e
		} else {
			if l.Parent != "" {
				if _, err := ldb.AddReferences(l.Parent, 1); err != nil {
					return fmt.Errorf("parent of %s: %w", l.ChainID, err)
				}
			}
			err := ldb.Put(cas.LayerRecord{ChainID: l.ChainID, DiffID: l.DiffID, Parent: l.Parent,
				Size: l.Size, CacheID: l.CacheID, TarSplit: tarSplit})
			if err != nil {
				return err
			}
		}
		if extra != nil {
			return extra(tx)
		}
		return nil
	})
	if err != nil {
		return Layer{}, fmt.Errorf("commit layer %s: %w", l.ChainID, err)
	}
	if existing != nil {
		s.driver.Remove(ctx, l.CacheID)
		return *existing, nil
	}
	return l, nil
}

// Release gives up the caller's use of stages. A stage nobody uses any more
// and that was never committed has its directory removed.
func (s *Store) Release(ctx context.Context, stages []*Stage) {
	s.stagesMu.Lock()
	defer s.stagesMu.Unlock()
	s.releaseLocked(ctx, stages)
}

func (s *Store) releaseLocked(ctx context.Context, stages []*Stage) {
	for _, st := range stages {
		st.users--
		if st.users > 0 {
			continue
		}
		delete(s.stages, st.ChainID)
		if !st.isCommitted() && st.created {
			s.driver.Remove(context.WithoutCancel(ctx), st.cacheID)
		}
	}
}

// RegisterLayer applies one layer stream on top of the committed layer
// parent ("" for none) when the diffID is not known in advance (load,
// import, build). An identical layer already present is reused. Callers
// hold a Lease until an image references the layer.
func (s *Store) RegisterLayer(ctx context.Context, parent digest.Digest, r io.Reader, extra func(tx *cas.Tx, l Layer) error) (Layer, error) {
	parentCache := ""
	if parent != "" {
		pl, err := s.Layer(ctx, parent)
		if err != nil {
			return Layer{}, fmt.Errorf("register layer: parent: %w", err)
		}
		parentCache = pl.CacheID
	}
	cacheID := newCacheID()
	if err := s.driver.Create(ctx, cacheID, parentCache); err != nil {
		return Layer{}, fmt.Errorf("register layer: %w", err)
	}
	res, err := s.applyStream(ctx, cacheID, r)
	if err != nil {
		s.driver.Remove(context.WithoutCancel(ctx), cacheID)
		return Layer{}, fmt.Errorf("register layer: %w", err)
	}
	l := Layer{ChainID: chainOf(parent, res.diffID), DiffID: res.diffID, Parent: parent, Size: res.size, CacheID: cacheID}
	var txExtra func(tx *cas.Tx) error
	if extra != nil {
		txExtra = func(tx *cas.Tx) error { return extra(tx, l) }
	}
	committed, err := s.commitLayer(ctx, l, res.tarSplit, txExtra)
	if err != nil {
		s.driver.Remove(context.WithoutCancel(ctx), cacheID)
		return Layer{}, err
	}
	return committed, nil
}

func recordToLayer(r cas.LayerRecord) Layer {
	return Layer{ChainID: r.ChainID, DiffID: r.DiffID, Parent: r.Parent, Size: r.Size, CacheID: r.CacheID}
}

// Layer returns a committed layer.
func (s *Store) Layer(ctx context.Context, chainID digest.Digest) (Layer, error) {
	var l Layer
	err := s.cas.Index.View(ctx, func(tx *cas.Tx) error {
		rec, err := tx.LayerDB().Get(chainID, false)
		if err != nil {
			return err
		}
		if rec.State != "" {
			return fmt.Errorf("layer %s is being deleted: %w", chainID, errdefs.ErrNotFound)
		}
		l = recordToLayer(rec)
		return nil
	})
	return l, err
}

// HasLayer reports whether a complete layer with this chain ID is recorded.
func (s *Store) HasLayer(ctx context.Context, chainID digest.Digest) bool {
	_, err := s.Layer(ctx, chainID)
	return err == nil
}

// LayerTar reassembles the exact tar a layer was registered from, from its
// tar-split record and its files.
func (s *Store) LayerTar(ctx context.Context, chainID digest.Digest) (io.ReadCloser, error) {
	var rec cas.LayerRecord
	err := s.cas.Index.View(ctx, func(tx *cas.Tx) error {
		var err error
		rec, err = tx.LayerDB().Get(chainID, true)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("layer tar %s: %w", chainID, err)
	}
	gz, err := gzip.NewReader(bytes.NewReader(rec.TarSplit))
	if err != nil {
		return nil, fmt.Errorf("layer tar %s: tar-split: %w", chainID, err)
	}
	getter := storage.NewPathFileGetter(s.driver.DiffPath(rec.CacheID))
	return asm.NewOutputTarStream(getter, storage.NewJSONUnpacker(gz)), nil
}

// errLayerInUse is wrapped when GC or delete meets a referenced layer.
var errLayerInUse = errors.New("layer in use")

const (
	// splitChunkSize and splitQueue bound how far the tar-split pass runs
	// ahead of the extractor: 1 MiB a layer.
	splitChunkSize = 128 << 10
	splitQueue     = 8
	// splitEarly is the least a chunk holds before it goes to an extractor
	// that has nothing queued: enough to keep handoffs rare, small enough
	// that the extractor does not sit idle behind a half-filled chunk.
	splitEarly = 32 << 10
	// splitReadSize is the read size for file content and trailing padding.
	splitReadSize = 64 << 10
	// splitFlushSize is how much tar-split JSON is gathered before it is
	// compressed.
	splitFlushSize = 64 << 10
)

// errSplitStopped ends the tar-split pass when the extractor has gone.
var errSplitStopped = errors.New("layer extraction stopped")

// splitter is the tar-split pass of applyStream, on a goroutine of its own:
// it reads the layer tar, hashes it (the diffID), records it for exact
// reassembly (tar-split's JSON entries: raw headers and padding, file names
// and crc64s) and hands the same bytes to the extractor, which reads them
// through Read. tar-split's NewInputTarStream passes them through an
// unbuffered io.Pipe, one write for every header, content read and padding,
// so parser and extractor take turns instead of running side by side; with
// small files that handoff cost more than the parsing. Here they go in large
// chunks through a short queue.
type splitter struct {
	src  io.Reader
	hash hash.Hash
	pk   splitPacker

	// The producer's side.
	fill     []byte      // the chunk being filled
	full     chan []byte // chunks for the extractor, in order; closed at the end
	free     chan []byte // chunks the extractor is done with
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	err      error // the pass's result, set before full is closed

	// File content is read into scratch; see splitTee.Read.
	scratch []byte
	crc     hash.Hash64
	direct  bool // content reads go straight into the chunk

	// The extractor's side.
	cur []byte
	off int
}

func newSplitter(src io.Reader) *splitter {
	sp := &splitter{
		src:  src,
		hash: sha256.New(),
		full: make(chan []byte, splitQueue),
		free: make(chan []byte, splitQueue+2),
		stop: make(chan struct{}),
		done: make(chan struct{}),
		crc:  newCRC64ISO(),
	}
	sp.pk.init()
	go sp.run()
	return sp
}

func (sp *splitter) run() {
	err := sp.split()
	if err == nil && len(sp.fill) > 0 {
		err = sp.send()
	}
	sp.err = err
	close(sp.full)
	close(sp.done)
}

// Read hands the extractor the tar's bytes.
func (sp *splitter) Read(p []byte) (int, error) {
	for sp.off == len(sp.cur) {
		if sp.cur != nil {
			select {
			case sp.free <- sp.cur[:0]:
			default:
			}
			sp.cur = nil
		}
		c, ok := <-sp.full
		if !ok {
			if sp.err != nil {
				return 0, sp.err
			}
			return 0, io.EOF
		}
		sp.cur, sp.off = c, 0
	}
	n := copy(p, sp.cur[sp.off:])
	sp.off += n
	return n, nil
}

// Close tells the pass the extractor reads no more.
func (sp *splitter) Close() error {
	sp.stopOnce.Do(func() { close(sp.stop) })
	return nil
}

// result waits for the pass and returns the compressed tar-split record
// and the diffID.
func (sp *splitter) result() ([]byte, digest.Digest, error) {
	<-sp.done
	if sp.err != nil {
		return nil, "", sp.err
	}
	ts, err := sp.pk.close()
	if err != nil {
		return nil, "", fmt.Errorf("tar-split: %w", err)
	}
	return ts, digest.NewDigest(digest.SHA256, sp.hash), nil
}

// emit queues p (just read from the source) for the extractor.
func (sp *splitter) emit(p []byte) error {
	for len(p) > 0 {
		n := copy(sp.space(), p)
		p = p[n:]
		if err := sp.filled(n); err != nil {
			return err
		}
	}
	return nil
}

// space returns the free part of the chunk being filled.
func (sp *splitter) space() []byte {
	if sp.fill == nil {
		select {
		case c := <-sp.free:
			sp.fill = c
		default:
			sp.fill = make([]byte, 0, splitChunkSize)
		}
	}
	return sp.fill[len(sp.fill):cap(sp.fill)]
}

// filled records n more bytes in the chunk and sends it when it is full,
// or early when the extractor has nothing left.
func (sp *splitter) filled(n int) error {
	sp.fill = sp.fill[:len(sp.fill)+n]
	if len(sp.fill) == cap(sp.fill) || (len(sp.fill) >= splitEarly && len(sp.full) == 0) {
		return sp.send()
	}
	return nil
}

func (sp *splitter) send() error {
	select {
	case sp.full <- sp.fill:
		sp.fill = nil
		return nil
	case <-sp.stop:
		return errSplitStopped
	}
}

// splitTee is what tar-split's tar reader reads: the source, hashed and
// passed on to the extractor.
type splitTee struct{ sp *splitter }

func (t splitTee) Read(p []byte) (int, error) {
	sp := t.sp
	if sp.direct && len(p) > 0 && &p[0] == &sp.scratch[0] {
		// File content, read for its crc64 only: it goes from the source
		// straight into the extractor's chunk, and p is left as it is.
		dst := sp.space()
		dst = dst[:min(len(dst), len(p))]
		n, err := sp.src.Read(dst)
		if n > 0 {
			sp.hash.Write(dst[:n])
			sp.crc.Write(dst[:n])
			if ferr := sp.filled(n); ferr != nil {
				return n, ferr
			}
		}
		return n, err
	}
	n, err := sp.src.Read(p)
	if n > 0 {
		sp.hash.Write(p[:n])
		if eerr := sp.emit(p[:n]); eerr != nil {
			return n, eerr
		}
	}
	return n, err
}

// split records the tar the way tar-split's asm.NewInputTarStream does
// (the same entries, in the same order), so asm.NewOutputTarStream
// reassembles it.
func (sp *splitter) split() error {
	tee := splitTee{sp}
	tr := tar.NewReader(tee)
	tr.RawAccounting = true
	buf := make([]byte, splitReadSize)
	sp.scratch = buf
	crc := sp.crc
	var sum [crc64.Size]byte
	for {
		hdr, err := tr.Next()
		if err != nil {
			if err != io.EOF {
				return err
			}
			// The end-of-archive marker.
			if b := tr.RawBytes(); len(b) > 0 {
				if err := sp.pk.segment(b); err != nil {
					return err
				}
			}
			break
		}
		if hdr == nil {
			break
		}
		if b := tr.RawBytes(); len(b) > 0 {
			if err := sp.pk.segment(b); err != nil {
				return err
			}
		}
		var csum []byte
		if hdr.Size > 0 {
			crc.Reset()
			// A plain file's content comes to buf untouched by the tar
			// reader, so the tee may skip buf and sum it itself; a sparse
			// file's has holes filled in between, so it is summed here.
			sp.direct = !sparse(hdr)
			for {
				n, err := tr.Read(buf)
				if !sp.direct {
					crc.Write(buf[:n])
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					sp.direct = false
					return err
				}
			}
			sp.direct = false
			csum = crc.Sum(sum[:0])
		}
		if err := sp.pk.file(hdr.Name, hdr.Size, csum); err != nil {
			return err
		}
		if b := tr.RawBytes(); len(b) > 0 {
			if err := sp.pk.segment(b); err != nil {
				return err
			}
		}
	}
	// Whatever follows the end marker (more zero blocks, usually) is part
	// of the layer too.
	for {
		n, err := tee.Read(buf)
		if n > 0 {
			if perr := sp.pk.segment(buf[:n]); perr != nil {
				return perr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// sparse reports whether hdr is a sparse file (of any GNU format).
func sparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// splitPacker writes tar-split's JSON entries, byte for byte what
// storage.NewJSONPacker writes (encoding/json of storage.Entry), gzipped
// fast: the record is small and read rarely. Encoding them by hand skips
// encoding/json's reflection, which cost as much as the crc64s.
type splitPacker struct {
	out  bytes.Buffer
	gz   *gzip.Writer
	line []byte // entries not compressed yet
	pos  int
	seen map[string]struct{}
}

func (pk *splitPacker) init() {
	pk.gz, _ = gzip.NewWriterLevel(&pk.out, gzip.BestSpeed)
	pk.seen = map[string]struct{}{}
}

func (pk *splitPacker) segment(b []byte) error {
	pk.line = append(pk.line, `{"type":2,"payload":"`...)
	pk.line = base64.StdEncoding.AppendEncode(pk.line, b)
	pk.line = append(pk.line, '"')
	return pk.end()
}

func (pk *splitPacker) file(name string, size int64, csum []byte) error {
	// The unpacker refuses a record with a name twice, so the packer does.
	key := filepath.Clean(name)
	if _, ok := pk.seen[key]; ok {
		return storage.ErrDuplicatePath
	}
	pk.seen[key] = struct{}{}
	pk.line = append(pk.line, `{"type":1`...)
	if !utf8.ValidString(name) {
		pk.line = append(pk.line, `,"name_raw":"`...)
		pk.line = base64.StdEncoding.AppendEncode(pk.line, []byte(name))
		pk.line = append(pk.line, '"')
	} else if name != "" {
		pk.line = append(pk.line, `,"name":`...)
		pk.line = appendJSONString(pk.line, name)
	}
	if size != 0 {
		pk.line = append(pk.line, `,"size":`...)
		pk.line = strconv.AppendInt(pk.line, size, 10)
	}
	if csum == nil {
		pk.line = append(pk.line, `,"payload":null`...)
	} else {
		pk.line = append(pk.line, `,"payload":"`...)
		pk.line = base64.StdEncoding.AppendEncode(pk.line, csum)
		pk.line = append(pk.line, '"')
	}
	return pk.end()
}

// end closes the entry being written with its position.
func (pk *splitPacker) end() error {
	pk.line = append(pk.line, `,"position":`...)
	pk.line = strconv.AppendInt(pk.line, int64(pk.pos), 10)
	pk.line = append(pk.line, "}\n"...)
	pk.pos++
	if len(pk.line) < splitFlushSize {
		return nil
	}
	_, err := pk.gz.Write(pk.line)
	pk.line = pk.line[:0]
	return err
}

func (pk *splitPacker) close() ([]byte, error) {
	if _, err := pk.gz.Write(pk.line); err != nil {
		return nil, err
	}
	pk.line = nil
	if err := pk.gz.Close(); err != nil {
		return nil, err
	}
	return pk.out.Bytes(), nil
}

// appendJSONString appends s as encoding/json writes a string: names of
// plain printable ASCII as they are, anything else through encoding/json
// itself (its escapes, HTML-safe like json.Encoder's default).
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
