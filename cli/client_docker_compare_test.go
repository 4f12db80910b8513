package cli

import (
	"strings"
	"testing"
	"time"
)

// TestSameOutputAsDockerCLI runs the real docker CLI 28.2.2 and berth with
// the same arguments against the same fake daemon and requires the same
// bytes on stdout and stderr and the same exit status. Each case gets a
// fresh daemon so mutating commands see the same state.
func TestSameOutputAsDockerCLI(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		stdin string
	}{
		{"images", []string{"images"}, ""},
		{"images all", []string{"images", "-a"}, ""},
		{"images quiet", []string{"images", "-q"}, ""},
		{"images quiet all", []string{"images", "-qa"}, ""},
		{"images digests", []string{"images", "--digests"}, ""},
		{"images no-trunc", []string{"images", "--no-trunc"}, ""},
		{"images dangling", []string{"images", "--filter", "dangling=true"}, ""},
		{"images reference", []string{"images", "busybox"}, ""},
		{"images hint", []string{"images", "ls"}, ""},
		{"image ls format", []string{"image", "ls", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}} {{.Digest}}"}, ""},
		{"image ls table format", []string{"image", "ls", "--format", `table {{.ID}}\t{{.Repository}}\t{{.CreatedSince}}\t{{.Containers}}`}, ""},
		{"image ls table digests", []string{"image", "ls", "--digests", "--format", `table {{.ID}}\t{{.Repository}}`}, ""},
		{"image ls json", []string{"image", "ls", "--format", "json"}, ""},
		{"image ls bad template", []string{"image", "ls", "--format", "{{.Foo"}, ""},
		{"history", []string{"history", "busybox"}, ""},
		{"history no-trunc", []string{"history", "--no-trunc", "busybox:v1"}, ""},
		{"history quiet", []string{"history", "-q", "busybox"}, ""},
		{"history not human", []string{"image", "history", "-H=false", "busybox"}, ""},
		{"history format", []string{"history", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}", "busybox"}, ""},
		{"history missing", []string{"history", "nope"}, ""},
		{"version format", []string{"version", "--format", "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.KernelVersion}} {{.Server.Os}}/{{.Server.Arch}}"}, ""},
		{"version format server json", []string{"version", "--format", "{{json .Server}}"}, ""},
		{"version bad template", []string{"version", "--format", "{{.Server"}, ""},
		{"inspect missing", []string{"inspect", "nope"}, ""},
		{"inspect image", []string{"inspect", "busybox"}, ""},
		{"inspect image and missing", []string{"inspect", "busybox", "nope"}, ""},
		{"inspect format", []string{"inspect", "--format", "{{.ID}} {{json .Config.Cmd}} {{index .Config.Labels \"org.example.team\"}} {{join .RepoTags \",\"}} {{upper .Os}}", "busybox"}, ""},
		{"inspect raw fallback", []string{"inspect", "--format", "{{.VirtualSize}} {{.GraphDriver.Name}}", "busybox"}, ""},
		{"inspect json", []string{"inspect", "--format", "json", "busybox"}, ""},
		{"inspect type image missing", []string{"inspect", "--type", "image", "nope"}, ""},
		{"image inspect", []string{"image", "inspect", "busybox:v1"}, ""},
		{"image inspect missing", []string{"image", "inspect", "nope"}, ""},
		{"tag", []string{"tag", "busybox", "busybox:v2"}, ""},
		{"tag missing", []string{"tag", "nope", "busybox:v2"}, ""},
		{"tag bad target", []string{"tag", "busybox", "Bad:Name"}, ""},
		{"rmi tag", []string{"rmi", "busybox:v1"}, ""},
		{"rmi last tags", []string{"rmi", "127.0.0.1:5000/team/app:1.0", "127.0.0.1:5000/team/app:stable"}, ""},
		{"rmi conflict", []string{"rmi", strings.TrimPrefix(idBusybox, "sha256:")[:12]}, ""},
		{"rmi missing and ok", []string{"rmi", "nope", "busybox:v1"}, ""},
		{"rmi force missing", []string{"image", "rm", "-f", "nope"}, ""},
		{"events", []string{"events", "--since", "0", "--until", "1"}, ""},
		{"events format", []string{"events", "--until", "1", "--format", "{{.Type}} {{.Status}} {{.ID}} {{.From}} {{.Actor.Attributes.name}}"}, ""},
		{"events json", []string{"events", "--until", "1", "--format", "json"}, ""},
		{"events bad format", []string{"events", "--format", "{{.Foo"}, ""},
		{"system df", []string{"system", "df"}, ""},
		{"system df verbose", []string{"system", "df", "-v"}, ""},
		{"system df format", []string{"system", "df", "--format", "{{.Type}}: {{.TotalCount}} {{.Active}} {{.Size}} {{.Reclaimable}}"}, ""},
		{"image prune", []string{"image", "prune", "-f"}, ""},
		{"image prune declined", []string{"image", "prune"}, "n\n"},
		{"image prune all accepted", []string{"image", "prune", "-a"}, "y\n"},
		{"usage tag arity", []string{"tag", "busybox"}, ""},
		{"usage rmi arity", []string{"rmi"}, ""},
		{"usage version args", []string{"version", "foo"}, ""},
		{"usage images unknown flag", []string{"images", "--nope"}, ""},
		{"usage global unknown flag", []string{"--nope", "images"}, ""},
		{"usage unknown command", []string{"nope"}, ""},
		{"usage unknown image command", []string{"image", "nope"}, ""},
		{"usage bad filter", []string{"images", "-f", "bogus"}, ""},
		{"usage missing flag value", []string{"images", "--format"}, ""},
		{"usage inspect type", []string{"inspect", "--type", "bogus", "x"}, ""},
		{"usage inspect empty type", []string{"inspect", "--type", "", "x"}, ""},
		{"usage log level", []string{"-l", "bogus", "images"}, ""},
		{"usage two hosts", []string{"-H", "unix:///nonexistent.sock", "images"}, ""},
		{"info format", []string{"info", "--format", "{{.Containers}} {{.Driver}} {{.KernelVersion}} {{.RegistryConfig.Mirrors}} {{.SecurityOptions}}"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
			want := runDocker(t, startFakeEngineAt(t, now).host(), tc.stdin, tc.args...)
			got := runBerth(t, startFakeEngineAt(t, now).host(), nil, tc.stdin, tc.args...)
			// Messages that name the program say "berth" where docker
			// says "docker".
			wantErr := strings.ReplaceAll(want.stderr, "docker", "berth")
			if got.stdout != want.stdout {
				t.Errorf("stdout differs\n--- docker:\n%s\n--- berth:\n%s", want.stdout, got.stdout)
			}
			if got.stderr != wantErr {
				t.Errorf("stderr differs\n--- docker:\n%s\n--- berth:\n%s", wantErr, got.stderr)
			}
			if got.code != want.code {
				t.Errorf("exit status: docker %d, berth %d", want.code, got.code)
			}
		})
	}
}

// TestSameRequestsAsDockerCLI checks the wire side: the requests (method,
// path, query) berth sends are the ones docker sends, for commands whose
// query strings carry options (filters, all, force, noprune).
func TestSameRequestsAsDockerCLI(t *testing.T) {
	cases := [][]string{
		{"images", "-a", "--filter", "label=a=b", "--filter", "Dangling=false", "busybox"},
		{"rmi", "-f", "--no-prune", "busybox:v1"},
		{"tag", "busybox", "127.0.0.1:5000/x/y:z"},
		{"image", "prune", "-a", "-f", "--filter", "until=24h"},
		{"history", "127.0.0.1:5000/team/app:1.0"},
		{"events", "--until", "1", "--filter", "type=image"},
		{"system", "df", "-v"},
		{"inspect", "nope"},
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			de, be := startFakeEngine(t), startFakeEngine(t)
			runDocker(t, de.host(), "", args...)
			runBerth(t, be.host(), nil, "", args...)
			want, got := strings.Join(de.requestLog(), "\n"), strings.Join(be.requestLog(), "\n")
			if got != want {
				t.Errorf("requests differ\n--- docker:\n%s\n--- berth:\n%s", want, got)
			}
		})
	}
}

// TestSameServerSectionAsDockerCLI compares the daemon half of `version`
// and `info` (the client half describes a different program).
func TestSameServerSectionAsDockerCLI(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"info"}, {"system", "info"}, {"-D", "info"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			now := time.Now()
			want := runDocker(t, startFakeEngineAt(t, now).host(), "", args...)
			got := runBerth(t, startFakeEngineAt(t, now).host(), nil, "", args...)
			server := func(s string) string {
				_, after, ok := strings.Cut(s, "\nServer:")
				if !ok {
					t.Fatalf("no Server section in:\n%s", s)
				}
				return after
			}
			if w, g := server(want.stdout), server(got.stdout); g != w {
				t.Errorf("server section differs\n--- docker:\n%s\n--- berth:\n%s", w, g)
			}
			if got.stderr != want.stderr || got.code != want.code {
				t.Errorf("docker: %d %q; berth: %d %q", want.code, want.stderr, got.code, got.stderr)
			}
		})
	}
}
