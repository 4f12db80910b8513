package cli

import (
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/docker/cli/templates"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
)

const defaultVersionTemplate = `{{with .Client -}}
Client:{{if ne .Platform nil}}{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}{{end}}
 Version:	{{.Version}}
 API version:	{{.APIVersion}}{{if ne .APIVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 Go version:	{{.GoVersion}}
 Git commit:	{{.GitCommit}}
 Built:	{{.BuildTime}}
 OS/Arch:	{{.Os}}/{{.Arch}}
 Context:	{{.Context}}
{{- end}}

{{- if ne .Server nil}}{{with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine" }}
  Version:	{{.Version}}
  API version:	{{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:	{{index .Details "GoVersion"}}
  Git commit:	{{index .Details "GitCommit"}}
  Built:	{{index .Details "BuildTime"}}
  OS/Arch:	{{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:	{{index .Details "Experimental"}}
  {{- else }}
  Version:	{{$component.Version}}
  {{- $detailsOrder := getDetailsOrder $component}}
  {{- range $key := $detailsOrder}}
  {{$key}}:	{{index $component.Details $key}}
   {{- end}}
  {{- end}}
 {{- end}}
 {{- end}}{{- end}}`

// versionInfo is what `berth version --format` templates see; field names
// and JSON are those of docker 28.
type versionInfo struct {
	Client clientVersion
	Server *serverVersion
}

type platformInfo struct {
	Name string `json:"Name,omitempty"`
}

type clientVersion struct {
	Platform          *platformInfo `json:"Platform,omitempty"`
	Version           string        `json:"Version,omitempty"`
	APIVersion        string        `json:"ApiVersion,omitempty"`
	DefaultAPIVersion string        `json:"DefaultAPIVersion,omitempty"`
	GitCommit         string        `json:"GitCommit,omitempty"`
	GoVersion         string        `json:"GoVersion,omitempty"`
	Os                string        `json:"Os,omitempty"`
	Arch              string        `json:"Arch,omitempty"`
	BuildTime         string        `json:"BuildTime,omitempty"`
	Context           string        `json:"Context"`
}

// serverVersion mirrors the /version reply as docker 28 decodes it. The
// top-level GitCommit, GoVersion, KernelVersion and BuildTime come from
// the Engine component, which carries the same facts.
type serverVersion struct {
	Platform      struct{ Name string }     `json:",omitempty"`
	Components    []system.ComponentVersion `json:",omitempty"`
	Version       string
	APIVersion    string `json:"ApiVersion"`
	MinAPIVersion string `json:"MinAPIVersion,omitempty"`
	GitCommit     string
	GoVersion     string
	Os            string
	Arch          string
	KernelVersion string `json:",omitempty"`
	Experimental  bool   `json:",omitempty"`
	BuildTime     string `json:",omitempty"`
}

// newClientVersion describes this berth binary; apiVersion is the
// negotiated API version ("" when unknown).
func newClientVersion(apiVersion string) clientVersion {
	v, commit, built := clientVersionInfo()
	return clientVersion{
		Version:           v,
		APIVersion:        apiVersion,
		DefaultAPIVersion: client.MaxAPIVersion,
		GoVersion:         runtime.Version(),
		GitCommit:         commit,
		BuildTime:         reformatDate(built),
		Os:                runtime.GOOS,
		Arch:              runtime.GOARCH,
		Context:           "default",
	}
}

func newServerVersion(sv client.ServerVersionResult) *serverVersion {
	out := &serverVersion{
		Version:       sv.Version,
		APIVersion:    sv.APIVersion,
		MinAPIVersion: sv.MinAPIVersion,
		Os:            sv.Os,
		Arch:          sv.Arch,
		Experimental:  sv.Experimental,
		Components:    sv.Components,
	}
	out.Platform.Name = sv.Platform.Name
	found := false
	for _, c := range sv.Components {
		if c.Name != "Engine" {
			continue
		}
		found = true
		out.GitCommit = c.Details["GitCommit"]
		out.GoVersion = c.Details["GoVersion"]
		out.KernelVersion = c.Details["KernelVersion"]
		out.BuildTime = c.Details["BuildTime"]
		if bt, ok := c.Details["BuildTime"]; ok {
			c.Details["BuildTime"] = reformatDate(bt)
		}
	}
	if !found {
		out.Components = append(out.Components, system.ComponentVersion{
			Name:    "Engine",
			Version: sv.Version,
			Details: map[string]string{
				"ApiVersion":    sv.APIVersion,
				"MinAPIVersion": sv.MinAPIVersion,
				"GitCommit":     out.GitCommit,
				"GoVersion":     out.GoVersion,
				"Os":            sv.Os,
				"Arch":          sv.Arch,
				"BuildTime":     reformatDate(out.BuildTime),
				"Experimental":  strconv.FormatBool(sv.Experimental),
			},
		})
	}
	return out
}

// reformatDate shows an RFC 3339 build time in docker's ANSI C layout.
func reformatDate(buildTime string) string {
	if t, err := time.Parse(time.RFC3339Nano, buildTime); err == nil {
		return t.Format(time.ANSIC)
	}
	return buildTime
}

func versionTemplate(format string) (*template.Template, error) {
	switch format {
	case "":
		format = defaultVersionTemplate
	case jsonFormatKey:
		format = jsonFormat
	}
	t, err := templates.New("version").Funcs(template.FuncMap{"getDetailsOrder": detailsOrder}).Parse(format)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %w", err)
	}
	return t, nil
}

func detailsOrder(v system.ComponentVersion) []string {
	out := make([]string, 0, len(v.Details))
	for k := range v.Details {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func writeVersion(out io.Writer, vd versionInfo, tmpl *template.Template) error {
	tw := tabwriter.NewWriter(out, 20, 1, 1, ' ', 0)
	err := tmpl.Execute(tw, vd)
	_, _ = tw.Write([]byte("\n"))
	_ = tw.Flush()
	return err
}
