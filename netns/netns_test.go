package netns

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func TestCreateHasLoopbackUpAndRemoveCleansUp(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ns", "c1")
	if err := Create(ctx, path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Remove(ctx, path) })
	if !Pinned(path) {
		t.Fatal("namespace not pinned")
	}
	if err := Create(ctx, path); err == nil {
		t.Fatal("second Create on the same path succeeded")
	}
	h, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	self, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	if h.Equal(self) {
		t.Fatal("Create returned the caller's own namespace")
	}
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	links, err := nh.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || links[0].Attrs().Name != "lo" {
		t.Fatalf("links in a fresh namespace: %v", links)
	}
	if links[0].Attrs().Flags&unix.IFF_UP == 0 {
		t.Fatal("lo is down")
	}
	if err := Remove(ctx, path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("pin file kept: %v", err)
	}
	if err := Remove(ctx, path); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}

func TestBuildHosts(t *testing.T) {
	b, err := BuildHosts(HostsOptions{Hostname: "web", Domainname: "example.org", ExtraHosts: []string{"db:10.0.0.2", "v6:::1"}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "::1\tlocalhost ip6-localhost ip6-loopback\n", "10.0.0.2\tdb\n", "::1\tv6\n", "127.0.0.1\tweb.example.org web\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("hosts lacks %q:\n%s", want, s)
		}
	}
	b, err = BuildHosts(HostsOptions{Hostname: "abc", IP: "172.17.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(b), "172.17.0.2\tabc\n") {
		t.Errorf("hostname line: %q", b)
	}
	if _, err := BuildHosts(HostsOptions{ExtraHosts: []string{"bad:notanip"}}); err == nil {
		t.Error("bad extra host accepted")
	}
	h, err := HostNetworkHosts([]byte("127.0.0.1 localhost"), []string{"x:1.2.3.4"})
	if err != nil || string(h) != "127.0.0.1 localhost\n1.2.3.4\tx\n" {
		t.Errorf("host network hosts %q %v", h, err)
	}
}

func TestBuildResolvConf(t *testing.T) {
	host := []byte("# comment\nnameserver 127.0.0.53\nnameserver 10.1.1.1\nnameserver ::1\nnameserver fe80::1\nsearch a.example b.example\noptions edns0\n")
	b, err := BuildResolvConf(host, ResolvOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "# comment\nnameserver 10.1.1.1\nsearch a.example b.example\noptions edns0\n"
	if string(b) != want {
		t.Errorf("filtered:\n%s\nwant:\n%s", b, want)
	}
	b, _ = BuildResolvConf([]byte("nameserver 127.0.0.1\n"), ResolvOptions{})
	if string(b) != "nameserver 8.8.8.8\nnameserver 8.8.4.4\n" {
		t.Errorf("only local nameservers: %q", b)
	}
	b, _ = BuildResolvConf(host, ResolvOptions{Nameservers: []string{"1.1.1.1"}, Search: []string{"."}, Options: []string{"ndots:2"}})
	if string(b) != "# comment\nnameserver 1.1.1.1\noptions ndots:2\n" {
		t.Errorf("overrides: %q", b)
	}
	if _, err := BuildResolvConf(host, ResolvOptions{Nameservers: []string{"nope"}}); err == nil {
		t.Error("bad --dns accepted")
	}
}

func BenchmarkCreateRemove(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	for i := 0; i < b.N; i++ {
		p := filepath.Join(dir, "ns")
		if err := Create(ctx, p); err != nil {
			b.Fatal(err)
		}
		if err := Remove(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}
