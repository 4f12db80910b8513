package pull

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/cas"
	"github.com/berth-dev/berth/chain"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
)

// Options are one pull's parameters.
type Options struct {
	// Platform is "os/arch[/variant]"; "" picks the host's.
	Platform string
	// Auth is the decoded X-Registry-Auth of the request.
	Auth AuthConfig
	// AllTags pulls every tag of the repository (ref must name none).
	AllTags bool
}

// abandonedError is a shared layer that another pull was applying when it
// went away: this pull's own context is fine, so it tries again.
type abandonedError struct{ err error }

func (e *abandonedError) Error() string { return e.err.Error() }
func (e *abandonedError) Unwrap() error { return e.err }

// maxAbandonRetries bounds how often a pull starts over because a pull it
// shared layers with was cancelled.
const maxAbandonRetries = 3

// Pull fetches ref from its registry (or a mirror) into the store and
// returns the image. Progress lines go to progress (may be nil) in dockerd's
// order; errors that happen before the first line (bad name, unknown
// image, credentials) come back with no line sent.
func (p *Puller) Pull(ctx context.Context, ref string, o Options, progress func(Message)) (chain.Image, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return chain.Image{}, errInvalidReference(err)
	}
	want, err := parsePlatform(o.Platform)
	if err != nil {
		return chain.Image{}, err
	}
	em := &emitter{fn: progress}
	if !o.AllTags {
		if _, ok := named.(reference.Canonical); !ok {
			named = reference.TagNameOnly(named)
		}
		img, updated, err := p.pullRef(ctx, named, want, o.Platform != "", o.Auth, em)
		if err != nil {
			return chain.Image{}, err
		}
		writeStatus(em, reference.FamiliarString(named), updated)
		return img, nil
	}

	if _, ok := named.(reference.Tagged); ok {
		return chain.Image{}, newClassErr(errdefs.ErrInvalidArgument, nil, "tag can't be used with --all-tags/-a")
	}
	if _, ok := named.(reference.Digested); ok {
		return chain.Image{}, newClassErr(errdefs.ErrInvalidArgument, nil, "digest can't be used with --all-tags/-a")
	}
	tags, err := p.listTags(ctx, named, o.Auth)
	if err != nil {
		return chain.Image{}, err
	}
	var last chain.Image
	anyUpdated := false
	for _, tag := range tags {
		tagged, err := reference.WithTag(named, tag)
		if err != nil {
			continue
		}
		img, updated, err := p.pullRef(ctx, tagged, want, o.Platform != "", o.Auth, em)
		if err != nil {
			return chain.Image{}, err
		}
		last, anyUpdated = img, anyUpdated || updated
	}
	writeStatus(em, reference.FamiliarName(named), anyUpdated)
	return last, nil
}

func writeStatus(em *emitter, ref string, updated bool) {
	if updated {
		em.status("", "Status: Downloaded newer image for "+ref)
	} else {
		em.status("", "Status: Image is up to date for "+ref)
	}
}

// pullRef pulls one tag or digest and reports whether the reference now
// points somewhere new.
func (p *Puller) pullRef(ctx context.Context, named reference.Named, want platform, explicit bool, auth AuthConfig, em *emitter) (chain.Image, bool, error) {
	r, err := p.resolve(ctx, named, want, auth)
	if err != nil {
		return chain.Image{}, false, err
	}
	tagOrDigest := ""
	if t, ok := named.(reference.Tagged); ok {
		tagOrDigest = t.Tag()
	} else if d, ok := named.(reference.Digested); ok {
		tagOrDigest = d.Digest().String()
	}
	em.status(tagOrDigest, "Pulling from "+reference.Path(named))

	var img chain.Image
	for attempt := 0; ; attempt++ {
		img, err = p.fetchImage(ctx, named, r, want, explicit, em)
		var ab *abandonedError
		if err == nil || !errors.As(err, &ab) || ctx.Err() != nil || attempt >= maxAbandonRetries {
			break
		}
		p.log.Debug("layer abandoned by another pull; starting over", "ref", named, "err", err)
		// Let the other pull release the failed stage first.
		select {
		case <-time.After(time.Duration(attempt+1) * 50 * time.Millisecond):
		case <-ctx.Done():
			return chain.Image{}, false, ctx.Err()
		}
	}
	if err != nil {
		return chain.Image{}, false, err
	}
	em.status("", "Digest: "+r.manifestDigest.String())
	return img, r.updated, nil
}

// resolved is what a manifest lookup settled on.
type resolved struct {
	sources        []blobSource // where blobs come from, best first
	manifestDigest digest.Digest
	configDesc     blobDesc
	layers         []blobDesc
	fromIndex      bool
	updated        bool // set by fetchImage
}

// resolve finds the manifest of named for want: on the mirrors first for
// docker.io images, falling through to the next and to the registry when
// one fails.
func (p *Puller) resolve(ctx context.Context, named reference.Named, want platform, auth AuthConfig) (*resolved, error) {
	cfg := p.config()
	eps, err := endpointsFor(ctx, cfg, reference.Domain(named))
	if err != nil {
		return nil, err
	}
	path := reference.Path(named)
	var lastErr error
	for i, ep := range eps {
		c, err := p.connect(ctx, ep, path, auth)
		var r *resolved
		if err == nil {
			r, err = p.resolveOn(ctx, c, named, want)
		}
		if err == nil {
			r.sources = append([]blobSource{connectedSource(c)}, p.lazySources(eps[i+1:], path, auth)...)
			return r, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		lastErr = translateManifestError(err, named)
		if ep.mirror {
			p.log.Info("registry mirror failed, trying the next endpoint", "mirror", ep.host, "ref", named.String(), "err", err)
			continue
		}
		return nil, lastErr
	}
	return nil, lastErr
}

func (p *Puller) lazySources(eps []endpoint, path string, auth AuthConfig) []blobSource {
	out := make([]blobSource, 0, len(eps))
	for _, ep := range eps {
		out = append(out, &registrySource{name: ep.String(), connect: func(ctx context.Context) (*repoClient, error) {
			return p.connect(ctx, ep, path, auth)
		}})
	}
	return out
}

// withRetry runs fn again on transient registry failures (5xx, 429).
func (p *Puller) withRetry(ctx context.Context, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		var te *transport.Error
		if err == nil || attempt >= maxRetries || !errors.As(err, &te) || !retryable(err) {
			return err
		}
		select {
		case <-time.After(p.backoff << attempt):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (p *Puller) resolveOn(ctx context.Context, c *repoClient, named reference.Named, want platform) (*resolved, error) {
	ref := ""
	var wantDigest digest.Digest
	switch n := named.(type) {
	case reference.Canonical:
		wantDigest = n.Digest()
		ref = wantDigest.String()
	case reference.Tagged:
		ref = n.Tag()
	default:
		ref = "latest"
	}
	var data []byte
	var mt types.MediaType
	err := p.withRetry(ctx, func() (err error) {
		data, mt, err = c.getManifest(ctx, ref)
		return err
	})
	if err != nil {
		return nil, err
	}
	r := &resolved{manifestDigest: digest.FromBytes(data)}
	if wantDigest != "" && r.manifestDigest != wantDigest {
		return nil, fmt.Errorf("manifest verification failed for digest %s", wantDigest)
	}
	if mt.IsIndex() {
		idx, err := v1.ParseIndexManifest(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("malformed manifest list %s: %w", r.manifestDigest, err)
		}
		d, ok := pickManifest(idx, want)
		if !ok {
			return nil, newClassErr(errdefs.ErrNotFound, nil, "no matching manifest for %s in the manifest list entries", want)
		}
		child := digest.Digest(d.Digest.String())
		err = p.withRetry(ctx, func() (err error) {
			data, mt, err = c.getManifest(ctx, child.String())
			return err
		})
		if err != nil {
			return nil, err
		}
		if got := digest.FromBytes(data); got != child {
			return nil, fmt.Errorf("manifest verification failed for digest %s", child)
		}
		if mt.IsIndex() {
			return nil, fmt.Errorf("manifest list %s points at another manifest list", r.manifestDigest)
		}
		r.fromIndex = true
	}
	switch mt {
	case types.DockerManifestSchema2, types.OCIManifestSchema1:
	case types.DockerManifestSchema1, types.DockerManifestSchema1Signed:
		return nil, fmt.Errorf("unsupported manifest format %s: schema1 manifests are not supported", mt)
	default:
		return nil, fmt.Errorf("unsupported manifest media type %q", mt)
	}
	m, err := v1.ParseManifest(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("malformed manifest %s: %w", r.manifestDigest, err)
	}
	switch m.Config.MediaType {
	case types.DockerConfigJSON, types.OCIConfigJSON, "":
	default:
		return nil, fmt.Errorf("unsupported image config media type %q", m.Config.MediaType)
	}
	r.configDesc = blobDesc{Digest: digest.Digest(m.Config.Digest.String()), Size: m.Config.Size, MediaType: m.Config.MediaType}
	if err := r.configDesc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("malformed manifest %s: config digest: %w", r.manifestDigest, err)
	}
	for _, l := range m.Layers {
		if !supportedLayer(l.MediaType) {
			return nil, fmt.Errorf("unsupported layer media type %q", l.MediaType)
		}
		d := blobDesc{Digest: digest.Digest(l.Digest.String()), Size: l.Size, MediaType: l.MediaType, URLs: l.URLs}
		if err := d.Digest.Validate(); err != nil || d.Digest.Algorithm() != digest.SHA256 {
			return nil, fmt.Errorf("malformed manifest %s: layer digest %q", r.manifestDigest, l.Digest)
		}
		r.layers = append(r.layers, d)
	}
	return r, nil
}

const ociRestrictedZstd types.MediaType = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

func supportedLayer(mt types.MediaType) bool {
	switch mt {
	case types.DockerLayer, types.DockerUncompressedLayer, types.DockerForeignLayer,
		types.OCILayer, types.OCILayerZStd, types.OCIUncompressedLayer,
		types.OCIRestrictedLayer, types.OCIUncompressedRestrictedLayer, ociRestrictedZstd:
		return true
	}
	return false
}

// fetchImage gets the config and the missing layers and records the image.
func (p *Puller) fetchImage(ctx context.Context, named reference.Named, r *resolved, want platform, explicit bool, em *emitter) (chain.Image, error) {
	imageID := r.configDesc.Digest
	var raw []byte
	existing, err := p.store.Image(ctx, imageID.String())
	if err == nil {
		// The image is here already: only the references may be new.
		raw = existing.RawConfig
	} else {
		if raw, err = p.fetchConfig(ctx, r); err != nil {
			return chain.Image{}, err
		}
		cfg, err := chain.ParseConfig(raw)
		if err != nil {
			return chain.Image{}, fmt.Errorf("malformed image config %s: %w", imageID, err)
		}
		if explicit && !r.fromIndex {
			got := normalizePlatform(platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant})
			if got.OS != want.OS || got.Architecture != want.Architecture || (want.Variant != "" && got.Variant != want.Variant) {
				return chain.Image{}, newClassErr(errdefs.ErrNotFound, nil,
					"image with reference %s was found but does not match the specified platform: wanted %s, actual: %s",
					reference.FamiliarString(named), want, got)
			}
		}
		if len(cfg.RootFS.DiffIDs) != len(r.layers) {
			return chain.Image{}, fmt.Errorf("layers from manifest don't match image configuration: manifest %s has %d layers, config %s has %d diff_ids",
				r.manifestDigest, len(r.layers), imageID, len(cfg.RootFS.DiffIDs))
		}
		release := p.store.Lease()
		defer release()
		stages, err := p.fetchLayers(ctx, named, r, cfg.RootFS.DiffIDs, em)
		defer p.store.Release(context.WithoutCancel(ctx), stages)
		if err != nil {
			return chain.Image{}, err
		}
	}

	refs := []string{named.String()}
	if _, ok := named.(reference.Canonical); !ok {
		refs = append(refs, named.Name()+"@"+r.manifestDigest.String())
	}
	prev, perr := p.store.Image(ctx, named.String())
	r.updated = perr != nil || prev.ID != imageID
	// The data is all here: finish even if the client went away, rather
	// than leave layers nothing references.
	img, err := p.store.CreateImage(context.WithoutCancel(ctx), raw, chain.CreateOptions{Refs: refs})
	if err != nil {
		return chain.Image{}, fmt.Errorf("create image %s: %w", imageID, err)
	}
	return img, nil
}

// fetchConfig gets the config blob through the transfer manager, like a
// layer: counted against the download limit, fetched once however many
// pulls want it, and kept in the store (the image's config is a blob).
func (p *Puller) fetchConfig(ctx context.Context, r *resolved) ([]byte, error) {
	desc := r.configDesc
	if desc.Size > maxConfigSize {
		return nil, fmt.Errorf("image config %s is larger than %d bytes", desc.Digest, maxConfigSize)
	}
	w, _ := p.xfers.watch(ctx, desc, r.sources, false)
	err := w.Wait(ctx)
	w.Release()
	if err != nil {
		var me *mismatchError
		if errors.As(err, &me) {
			return nil, fmt.Errorf("image config verification failed for digest %s", desc.Digest)
		}
		return nil, fmt.Errorf("fetch image config %s: %w", desc.Digest, err)
	}
	data, err := p.store.CAS().Blobs.ReadAll(ctx, desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("image config %s: %w", desc.Digest, err)
	}
	if got := digest.FromBytes(data); got != desc.Digest {
		return nil, fmt.Errorf("image config verification failed for digest %s", desc.Digest)
	}
	return data, nil
}

// layerJob is one missing layer of one pull.
type layerJob struct {
	desc    blobDesc
	diffID  digest.Digest
	id      string
	stage   *chain.Stage
	sources []blobSource
	applied atomic.Int64 // compressed bytes the applier has read
	done    chan struct{}
	err     error
}

// fetchLayers downloads and applies every layer not yet in the store,
// and commits them in chain order once all of them are verified and
// applied, so a failed pull leaves no layer record behind. It returns the
// stages to release.
func (p *Puller) fetchLayers(ctx context.Context, named reference.Named, r *resolved, diffIDs []digest.Digest, em *emitter) ([]*chain.Stage, error) {
	chainIDs := chain.ChainIDs(diffIDs)
	present := 0
	for i := len(chainIDs) - 1; i >= 0; i-- {
		// A layer's record implies its parents' records.
		if p.store.HasLayer(ctx, chainIDs[i]) {
			present = i + 1
			break
		}
	}
	for i, l := range r.layers {
		if i < present {
			em.layer(shortID(l.Digest.Encoded()), statusAlreadyExists)
		} else {
			em.layer(shortID(l.Digest.Encoded()), statusPullingFSLayer)
		}
	}
	if present == len(chainIDs) {
		return nil, nil
	}
	parent := digest.Digest("")
	if present > 0 {
		parent = chainIDs[present-1]
	}
	stages, err := p.store.StageChain(ctx, parent, diffIDs[present:])
	if err != nil {
		return nil, err
	}

	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var firstErr error
	var errOnce sync.Once
	fail := func(err error) {
		errOnce.Do(func() {
			firstErr = err
			cancel()
		})
	}
	streaming := p.store.Driver().IndependentLayers()
	jobs := make([]*layerJob, len(stages))
	for i, st := range stages {
		desc := r.layers[present+i]
		jobs[i] = &layerJob{desc: desc, diffID: diffIDs[present+i], id: shortID(desc.Digest.Encoded()),
			stage: st, sources: p.layerSources(r, desc), done: make(chan struct{})}
		// Joined here, in manifest order, so the downloads queue in it.
		claimed := st.Claim()
		w, rc := p.xfers.watch(jctx, desc, jobs[i].sources, claimed && streaming)
		go p.runLayer(jctx, jobs[i], claimed, w, rc, em, fail)
	}
	for _, job := range jobs {
		<-job.done
		if job.err == nil && jctx.Err() == nil {
			em.layer(job.id, statusPullComplete)
		}
	}
	if firstErr != nil {
		return stages, firstErr
	}
	if err := ctx.Err(); err != nil {
		return stages, err
	}
	for _, job := range jobs {
		if job.err != nil {
			return stages, job.err
		}
	}
	// Everything is verified and applied: record the layers in order, each
	// with its distribution records in the same transaction.
	cctx := context.WithoutCancel(ctx)
	for _, job := range jobs {
		extra := func(tx *cas.Tx) error {
			dist := tx.Distribution()
			if err := dist.SetDiffID(job.desc.Digest, job.diffID); err != nil {
				return err
			}
			return dist.AddV2Metadata(job.diffID, cas.V2Metadata{Digest: job.desc.Digest, SourceRepository: named.Name()})
		}
		if _, err := job.stage.Commit(cctx, extra); err != nil {
			return stages, fmt.Errorf("register layer %s: %w", job.desc.Digest, err)
		}
	}
	return stages, nil
}

// layerSources puts a foreign layer's URLs before the registry, as dockerd
// does.
func (p *Puller) layerSources(r *resolved, desc blobDesc) []blobSource {
	if len(desc.URLs) == 0 {
		return r.sources
	}
	cfg := p.config()
	var out []blobSource
	for _, raw := range desc.URLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			continue
		}
		tr := p.secure
		if isInsecure(context.Background(), cfg, u.Host) {
			tr = p.insecure
		}
		out = append(out, &urlSource{client: &http.Client{Transport: tr}, url: raw})
	}
	return append(out, r.sources...)
}

// countingReader counts what the applier has consumed, for the
// Extracting progress, and turns the failure of a read cut short by the
// end of ctx into ctx's error (a closed pipe says only "closed pipe").
type countingReader struct {
	ctx context.Context
	r   io.Reader
	n   *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	if err != nil && err != io.EOF && c.ctx.Err() != nil {
		err = c.ctx.Err()
	}
	return n, err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// runLayer gets one layer through the watch w of its blob's transfer:
// when it claimed the stage, it applies the bytes as they arrive (from rc)
// or, without rc, from the committed blob once the transfer is over.
// Otherwise it waits for whoever applies the stage.
func (p *Puller) runLayer(ctx context.Context, job *layerJob, claimed bool, w *watcher, rc io.ReadCloser, em *emitter, fail func(error)) {
	defer close(job.done)
	var applyDone chan error
	startApply := func(r io.Reader, onDone func()) {
		applyDone = make(chan error, 1)
		go func() {
			err := job.stage.Apply(ctx, &countingReader{ctx: ctx, r: r, n: &job.applied})
			if onDone != nil {
				onDone()
			}
			applyDone <- err
		}()
	}

	defer w.Release()
	if rc != nil {
		startApply(rc, func() { rc.Close() })
	}

	finished := make(chan struct{})
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		p.report(ctx, job, w.t, claimed, em, finished)
	}()

	xferErr := w.Wait(ctx)
	if claimed && applyDone == nil {
		if xferErr == nil {
			f, err := p.store.CAS().Blobs.Open(ctx, job.desc.Digest)
			if err != nil {
				xferErr = err
			} else {
				startApply(f, func() { f.Close() })
			}
		}
		if applyDone == nil {
			// Nobody will apply this stage: fail it, so pulls waiting on
			// it do not hang.
			err := xferErr
			if err == nil {
				err = ctx.Err()
			}
			job.stage.Apply(ctx, errReader{err})
		}
	}
	var applyErr error
	switch {
	case applyDone != nil:
		applyErr = <-applyDone
	case !claimed && xferErr == nil:
		applyErr = job.stage.Wait(ctx)
		if applyErr != nil && ctx.Err() == nil {
			// Another pull applied this layer and failed, most likely
			// because its client went away; our blob is fine, so start
			// over and apply it ourselves.
			applyErr = &abandonedError{applyErr}
		}
	}
	job.err = xferErr
	if job.err == nil {
		job.err = applyErr
	}
	var ab *abandonedError
	if job.err != nil && !errors.As(job.err, &ab) {
		// Stop the other layers at once, before this one's report ends.
		// An abandoned layer does not: the other downloads go on, so the
		// retry finds their blobs in the store.
		fail(job.err)
	}
	close(finished)
	<-reported
}

// report sends one layer's progress lines: Waiting (when it queued behind
// the download limit), Downloading at most every 100 ms, Verifying
// Checksum, Download complete, then Extracting until the applier is done.
// "Pull complete" is the caller's, in chain order.
func (p *Puller) report(ctx context.Context, job *layerJob, t *transfer, claimed bool, em *emitter, finished <-chan struct{}) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	size := job.desc.Size
	var waitingSent, downloadingSent, verifySent bool
	lastCur := int64(-1)
	jobDone := false
	for {
		ph, changed := t.state()
		if ph == phaseDone && t.err != nil {
			return
		}
		if t.waited.Load() && !waitingSent && !downloadingSent && ph < phaseVerifying {
			em.layer(job.id, statusWaiting)
			waitingSent = true
		}
		if ph >= phaseDownloading {
			if cur := t.current.Load(); cur > 0 && cur != lastCur {
				em.count(job.id, statusDownloading, cur, size)
				lastCur, downloadingSent = cur, true
			}
		}
		if ph >= phaseVerifying {
			if !downloadingSent {
				em.count(job.id, statusDownloading, size, size)
				downloadingSent = true
			}
			if !verifySent {
				em.layer(job.id, statusVerifying)
				verifySent = true
			}
		}
		if ph == phaseDone {
			em.layer(job.id, statusDownloadComplete)
			break
		}
		if jobDone {
			return // failed or cancelled before the download finished
		}
		select {
		case <-changed:
		case <-tick.C:
		case <-finished:
			jobDone = true
		case <-ctx.Done():
			return
		}
	}

	lastExt := int64(-1)
	for {
		select {
		case <-finished:
			jobDone = true
		default:
		}
		if jobDone && job.err != nil {
			return
		}
		cur := job.applied.Load()
		if !claimed || jobDone {
			cur = max(cur, size)
		}
		if cur > 0 && cur != lastExt && (claimed || jobDone) {
			em.count(job.id, statusExtracting, min(cur, size), size)
			lastExt = cur
		}
		if jobDone {
			return
		}
		select {
		case <-finished:
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// listTags lists a repository's tags for --all-tags.
func (p *Puller) listTags(ctx context.Context, named reference.Named, auth AuthConfig) ([]string, error) {
	cfg := p.config()
	eps, err := endpointsFor(ctx, cfg, reference.Domain(named))
	if err != nil {
		return nil, err
	}
	var lastErr error
	for _, ep := range eps {
		c, err := p.connect(ctx, ep, reference.Path(named), auth)
		var tags []string
		if err == nil {
			tags, err = c.tags(ctx)
		}
		if err == nil {
			return tags, nil
		}
		lastErr = translateManifestError(err, named)
		if !ep.mirror || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// tags reads /v2/<repo>/tags/list, following Link pagination.
func (c *repoClient) tags(ctx context.Context) ([]string, error) {
	next := c.url("tags", "list")
	var out []string
	for page := 0; next != "" && page < 100; page++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		if err != nil {
			return nil, err
		}
		resp, err := c.client.Do(req)
		if err != nil {
			return nil, err
		}
		if err := transport.CheckError(resp, http.StatusOK); err != nil {
			resp.Body.Close()
			return nil, err
		}
		var body struct {
			Tags []string `json:"tags"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, maxManifestSize)).Decode(&body)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("tag list: %w", err)
		}
		out = append(out, body.Tags...)
		next = nextLink(resp, c.base)
	}
	return out, nil
}

// nextLink reads `Link: </v2/...?last=x&n=y>; rel="next"`.
func nextLink(resp *http.Response, base string) string {
	l := resp.Header.Get("Link")
	if l == "" || !strings.Contains(l, `rel="next"`) {
		return ""
	}
	start, end := strings.Index(l, "<"), strings.Index(l, ">")
	if start < 0 || end <= start {
		return ""
	}
	u := l[start+1 : end]
	if strings.HasPrefix(u, "/") {
		return base + u
	}
	return u
}
