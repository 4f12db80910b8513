package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/chain"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/labstack/echo/v4"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
)

// ImageStore is what the image endpoints need from the layer store.
type ImageStore interface {
	Images(ctx context.Context) []chain.Image
	Image(ctx context.Context, refOrID string) (chain.Image, error)
	History(ctx context.Context, refOrID string) ([]chain.HistoryItem, error)
	Tag(ctx context.Context, refOrID, ref string) (chain.Image, error)
	DeleteImage(ctx context.Context, refOrID string, force, prune bool) ([]chain.DeleteItem, error)
	Children(id digest.Digest) []digest.Digest
	ImageUsers(ctx context.Context) map[digest.Digest][]chain.ImageUser
	LayersSize(ctx context.Context) int64
	// Generation changes whenever an image or reference does.
	Generation() uint64
	GraphDriver(ctx context.Context, top digest.Digest) (name string, data map[string]string)
}

// ImageSummary is GET /images/json's item at API 1.41 (VirtualSize is
// gone from the newer wire types).
type ImageSummary struct {
	Containers  int64             `json:"Containers"`
	Created     int64             `json:"Created"`
	ID          string            `json:"Id"`
	Labels      map[string]string `json:"Labels"`
	ParentID    string            `json:"ParentId"`
	RepoDigests []string          `json:"RepoDigests"`
	RepoTags    []string          `json:"RepoTags"`
	SharedSize  int64             `json:"SharedSize"`
	Size        int64             `json:"Size"`
	VirtualSize int64             `json:"VirtualSize"`
}

type graphDriver struct {
	Name string            `json:"Name"`
	Data map[string]string `json:"Data"`
}

type rootFS struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers"`
}

// imageInspect is GET /images/{name}/json at API 1.41.
type imageInspect struct {
	ID              string           `json:"Id"`
	RepoTags        []string         `json:"RepoTags"`
	RepoDigests     []string         `json:"RepoDigests"`
	Parent          string           `json:"Parent"`
	Comment         string           `json:"Comment"`
	Created         string           `json:"Created"`
	Container       string           `json:"Container"`
	ContainerConfig *containerConfig `json:"ContainerConfig"`
	DockerVersion   string           `json:"DockerVersion"`
	Author          string           `json:"Author"`
	Config          *containerConfig `json:"Config"`
	Architecture    string           `json:"Architecture"`
	Variant         string           `json:"Variant,omitempty"`
	Os              string           `json:"Os"`
	OsVersion       string           `json:"OsVersion,omitempty"`
	Size            int64            `json:"Size"`
	VirtualSize     int64            `json:"VirtualSize"`
	GraphDriver     graphDriver      `json:"GraphDriver"`
	RootFS          rootFS           `json:"RootFS"`
	Metadata        struct {
		LastTagTime string `json:"LastTagTime"`
	} `json:"Metadata"`
}

type historyItem struct {
	Comment   string   `json:"Comment"`
	Created   int64    `json:"Created"`
	CreatedBy string   `json:"CreatedBy"`
	ID        string   `json:"Id"`
	Size      int64    `json:"Size"`
	Tags      []string `json:"Tags"`
}

type pruneReport struct {
	ImagesDeleted  []chain.DeleteItem `json:"ImagesDeleted"`
	SpaceReclaimed int64              `json:"SpaceReclaimed"`
}

func (s *Server) registerImageRoutes() {
	if s.backends.Images == nil {
		return
	}
	e := s.echo
	e.GET("/images/json", s.listImages)
	e.POST("/images/prune", s.pruneImages)
	if s.backends.Puller != nil {
		e.POST("/images/create", s.createImage)
	}
	// Names carry slashes and colons unescaped: match the whole rest and
	// split off the fixed suffix.
	e.GET("/images/*", s.imageGetRoute)
	e.POST("/images/*", s.imagePostRoute)
	e.DELETE("/images/*", s.deleteImage)
}

func imageNameAndAction(c echo.Context, actions ...string) (name, action string) {
	rest := c.Param("*")
	for _, a := range actions {
		if strings.HasSuffix(rest, "/"+a) {
			return strings.TrimSuffix(rest, "/"+a), a
		}
	}
	return rest, ""
}

func (s *Server) imageGetRoute(c echo.Context) error {
	name, action := imageNameAndAction(c, "json", "history")
	switch action {
	case "json":
		return s.inspectImage(c, name)
	case "history":
		return s.imageHistory(c, name)
	}
	return echo.ErrNotFound
}

func (s *Server) imagePostRoute(c echo.Context) error {
	name, action := imageNameAndAction(c, "tag")
	if action == "tag" {
		return s.tagImage(c, name)
	}
	return echo.ErrNotFound
}

func familiarRefs(img chain.Image) []reference.Named {
	var out []reference.Named
	for _, r := range append(append([]string(nil), img.RepoTags...), img.RepoDigests...) {
		if n, err := reference.ParseNormalizedNamed(r); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func (s *Server) listImages(c echo.Context) error {
	gen := s.backends.Images.Generation()
	key := c.Request().URL.RawQuery
	if body, ok := s.imagesJSON.get(gen, key, ""); ok {
		return writeJSONBytes(c, http.StatusOK, body)
	}
	ctx := c.Request().Context()
	f, err := ParseFilters(c.QueryParam("filters"))
	if err != nil {
		return err
	}
	if err := f.Validate("dangling", "label", "before", "since", "reference"); err != nil {
		return err
	}
	all := boolParam(c.QueryParam("all"))
	store := s.backends.Images
	danglingOnly := false
	if f.Contains("dangling") {
		v, set, err := f.GetBool("dangling")
		if err != nil {
			return err
		}
		danglingOnly = set && v
	}
	var before, since time.Time
	for _, key := range []string{"before", "since"} {
		for _, ref := range f.Get(key) {
			img, err := store.Image(ctx, ref)
			if err != nil {
				return err
			}
			if key == "before" {
				before = img.Created()
			} else {
				since = img.Created()
			}
		}
	}
	out := make([]ImageSummary, 0)
	for _, img := range store.Images(ctx) {
		created := img.Created()
		if !before.IsZero() && !created.Before(before) {
			continue
		}
		if !since.IsZero() && !created.After(since) {
			continue
		}
		if f.Contains("label") && !f.MatchKVList("label", img.Config.Config.Labels) {
			continue
		}
		tags, digests := img.RepoTags, img.RepoDigests
		if f.Contains("reference") {
			tags, digests = nil, nil
			for _, ref := range familiarRefs(img) {
				for _, pattern := range f.Get("reference") {
					if ok, _ := reference.FamiliarMatch(pattern, ref); ok {
						if _, isDigest := ref.(reference.Canonical); isDigest {
							digests = append(digests, reference.FamiliarString(ref))
						} else {
							tags = append(tags, reference.FamiliarString(ref))
						}
						break
					}
				}
			}
			if len(tags) == 0 && len(digests) == 0 {
				continue
			}
		}
		if len(tags) == 0 && len(digests) == 0 {
			// Intermediate images (untagged with children) only with all.
			if !all && len(store.Children(img.ID)) > 0 {
				continue
			}
			if f.Contains("dangling") && !danglingOnly {
				continue
			}
			tags, digests = []string{"<none>:<none>"}, []string{"<none>@<none>"}
		} else if danglingOnly && len(img.RepoTags) > 0 {
			continue
		}
		parent := ""
		if img.Parent != "" {
			parent = img.Parent.String()
		}
		out = append(out, ImageSummary{
			Containers:  -1,
			Created:     created.Unix(),
			ID:          img.ID.String(),
			Labels:      img.Config.Config.Labels,
			ParentID:    parent,
			RepoDigests: nonNil(digests),
			RepoTags:    nonNil(tags),
			SharedSize:  -1,
			Size:        img.Size,
			VirtualSize: img.Size,
		})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Created != out[j].Created {
			return out[i].Created > out[j].Created
		}
		return out[i].ID < out[j].ID
	})
	body, err := encodeJSON(out)
	if err != nil {
		return err
	}
	s.imagesJSON.put(gen, key, "", body)
	return writeJSONBytes(c, http.StatusOK, body)
}

func boolParam(v string) bool {
	switch strings.ToLower(v) {
	case "", "0", "false", "no", "off":
		return false
	}
	return true
}

func (s *Server) inspectImage(c echo.Context, name string) error {
	ctx := c.Request().Context()
	img, err := s.backends.Images.Image(ctx, name)
	if err != nil {
		return err
	}
	cfg := img.Config
	out := imageInspect{
		ID:            img.ID.String(),
		RepoTags:      nonNil(img.RepoTags),
		RepoDigests:   nonNil(img.RepoDigests),
		Comment:       commentOf(img),
		Created:       img.Created().UTC().Format(time.RFC3339Nano),
		DockerVersion: dockerVersionOf(img),
		Author:        cfg.Author,
		Config:        containerConfigOf(img),
		Architecture:  cfg.Architecture,
		Variant:       cfg.Variant,
		Os:            cfg.OS,
		OsVersion:     cfg.OSVersion,
		Size:          img.Size,
		VirtualSize:   img.Size,
		RootFS:        rootFS{Type: "layers", Layers: []string{}},
	}
	if img.Parent != "" {
		out.Parent = img.Parent.String()
	}
	out.ContainerConfig = &containerConfig{}
	for _, d := range cfg.RootFS.DiffIDs {
		out.RootFS.Layers = append(out.RootFS.Layers, d.String())
	}
	name, data := s.backends.Images.GraphDriver(ctx, img.TopLayer)
	out.GraphDriver = graphDriver{Name: name, Data: data}
	if !img.LastTagTime.IsZero() {
		out.Metadata.LastTagTime = img.LastTagTime.UTC().Format(time.RFC3339Nano)
	} else {
		out.Metadata.LastTagTime = "0001-01-01T00:00:00Z"
	}
	return WriteJSON(c, http.StatusOK, out)
}

func commentOf(img chain.Image) string {
	return rawField(img.RawConfig, "comment")
}

func dockerVersionOf(img chain.Image) string {
	return rawField(img.RawConfig, "docker_version")
}

// containerConfig is the container.Config shape dockerd 20.10 prints for
// an image's Config and ContainerConfig.
type containerConfig struct {
	Hostname     string              `json:"Hostname"`
	Domainname   string              `json:"Domainname"`
	User         string              `json:"User"`
	AttachStdin  bool                `json:"AttachStdin"`
	AttachStdout bool                `json:"AttachStdout"`
	AttachStderr bool                `json:"AttachStderr"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Tty          bool                `json:"Tty"`
	OpenStdin    bool                `json:"OpenStdin"`
	StdinOnce    bool                `json:"StdinOnce"`
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	Healthcheck  any                 `json:"Healthcheck,omitempty"`
	ArgsEscaped  bool                `json:"ArgsEscaped,omitempty"`
	Image        string              `json:"Image"`
	Volumes      map[string]struct{} `json:"Volumes"`
	WorkingDir   string              `json:"WorkingDir"`
	Entrypoint   []string            `json:"Entrypoint"`
	OnBuild      []string            `json:"OnBuild"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	Shell        []string            `json:"Shell,omitempty"`
}

func containerConfigOf(img chain.Image) *containerConfig {
	c := img.Config.Config
	cc := &containerConfig{
		User:        c.User,
		Env:         c.Env,
		Cmd:         c.Cmd,
		WorkingDir:  c.WorkingDir,
		Entrypoint:  c.Entrypoint,
		Labels:      c.Labels,
		StopSignal:  c.StopSignal,
		OnBuild:     c.OnBuild,
		Shell:       c.Shell,
		ArgsEscaped: c.ArgsEscaped, //nolint:staticcheck // Docker still reports it
		Volumes:     c.Volumes,
	}
	if len(c.ExposedPorts) > 0 {
		cc.ExposedPorts = c.ExposedPorts
	}
	if c.Healthcheck != nil {
		cc.Healthcheck = c.Healthcheck
	}
	return cc
}

func (s *Server) imageHistory(c echo.Context, name string) error {
	items, err := s.backends.Images.History(c.Request().Context(), name)
	if err != nil {
		return err
	}
	out := make([]historyItem, 0, len(items))
	for _, h := range items {
		out = append(out, historyItem{Comment: h.Comment, Created: h.Created, CreatedBy: h.CreatedBy, ID: h.ID, Size: h.Size, Tags: h.Tags})
	}
	return WriteJSON(c, http.StatusOK, out)
}

func (s *Server) tagImage(c echo.Context, name string) error {
	repo, tag := c.QueryParam("repo"), c.QueryParam("tag")
	if repo == "" {
		return errdefs.ErrInvalidArgument.WithMessage("repository name must have at least one component")
	}
	ref := repo
	if tag != "" {
		ref = repo + ":" + tag
	}
	// A repo carrying its own tag together with a tag parameter is not a
	// reference Docker accepts either.
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage("Error parsing reference: \"" + ref + "\" is not a valid repository/tag: " + err.Error())
	}
	img, err := s.backends.Images.Tag(c.Request().Context(), name, ref)
	if err != nil {
		return err
	}
	n, _ := chain.ParseReference(ref)
	s.imageEvent(img, reference.FamiliarString(n), events.ActionTag)
	return c.NoContent(http.StatusCreated)
}

func (s *Server) imageEvent(img chain.Image, name string, action events.Action) {
	attrs := map[string]string{"name": name}
	for k, v := range img.Config.Config.Labels {
		attrs[k] = v
	}
	s.events.Publish(events.Message{Type: events.ImageEventType, Action: action,
		Actor: events.Actor{ID: img.ID.String(), Attributes: attrs}})
}

func (s *Server) deleteImage(c echo.Context) error {
	ctx := c.Request().Context()
	name := c.Param("*")
	img, err := s.backends.Images.Image(ctx, name)
	if err != nil {
		return err
	}
	items, err := s.backends.Images.DeleteImage(ctx, name, boolParam(c.QueryParam("force")), !boolParam(c.QueryParam("noprune")))
	s.deleteEvents(img, items)
	if err != nil {
		return err
	}
	return WriteJSON(c, http.StatusOK, items)
}

func (s *Server) deleteEvents(img chain.Image, items []chain.DeleteItem) {
	for _, it := range items {
		switch {
		case it.Untagged != "":
			s.imageEvent(img, img.ID.String(), events.ActionUnTag)
		case it.Deleted == img.ID.String():
			s.imageEvent(img, img.ID.String(), events.ActionDelete)
		}
	}
}

func (s *Server) pruneImages(c echo.Context) error {
	ctx := c.Request().Context()
	f, err := ParseFilters(c.QueryParam("filters"))
	if err != nil {
		return err
	}
	if err := f.Validate("dangling", "label", "label!", "until"); err != nil {
		return err
	}
	danglingOnly := true
	if f.Contains("dangling") {
		v, set, err := f.GetBool("dangling")
		if err != nil {
			return err
		}
		danglingOnly = !set || v
	}
	var until time.Time
	for _, u := range f.Get("until") {
		if until, err = ParseEventTime(u, time.Now()); err != nil {
			return errdefs.ErrInvalidArgument.WithMessage("invalid filter 'until=" + u + "'")
		}
	}
	store := s.backends.Images
	used := store.ImageUsers(ctx)
	before := store.LayersSize(ctx)
	report := pruneReport{ImagesDeleted: []chain.DeleteItem{}}
	for _, img := range store.Images(ctx) {
		if len(used[img.ID]) > 0 {
			continue
		}
		if danglingOnly && (len(img.RepoTags) > 0 || len(store.Children(img.ID)) > 0) {
			continue
		}
		if !until.IsZero() && !img.Created().Before(until) {
			continue
		}
		if f.Contains("label") && !f.MatchKVList("label", img.Config.Config.Labels) {
			continue
		}
		if f.Contains("label!") && matchAnyLabel(f.Get("label!"), img.Config.Config.Labels) {
			continue
		}
		items, err := store.DeleteImage(ctx, img.ID.String(), !danglingOnly, true)
		s.deleteEvents(img, items)
		if err != nil {
			if errdefs.IsConflict(err) || errdefs.IsNotFound(err) {
				continue // a child or a container appeared meanwhile
			}
			return err
		}
		report.ImagesDeleted = append(report.ImagesDeleted, items...)
	}
	report.SpaceReclaimed = max(before-store.LayersSize(ctx), 0)
	if len(report.ImagesDeleted) == 0 {
		report.ImagesDeleted = nil
	}
	s.events.Publish(events.Message{Type: events.ImageEventType, Action: events.ActionPrune,
		Actor: events.Actor{Attributes: map[string]string{"reclaimed": strconv.FormatInt(report.SpaceReclaimed, 10)}}})
	return WriteJSON(c, http.StatusOK, report)
}

func matchAnyLabel(wanted []string, labels map[string]string) bool {
	for _, w := range wanted {
		k, v, hasValue := strings.Cut(w, "=")
		got, ok := labels[k]
		if ok && (!hasValue || got == v) {
			return true
		}
	}
	return false
}

// rawField reads a top-level string field of a config that Docker's
// configs carry beyond the OCI ones ("comment", "docker_version").
func rawField(raw []byte, key string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	var v string
	json.Unmarshal(m[key], &v)
	return v
}
