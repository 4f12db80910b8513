package netns

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strings"
)

// defaultHosts are the lines Docker writes at the top of every container's
// /etc/hosts.
const defaultHosts = "127.0.0.1\tlocalhost\n" +
	"::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"fe00::0\tip6-localnet\n" +
	"ff00::0\tip6-mcastprefix\n" +
	"ff02::1\tip6-allnodes\n" +
	"ff02::2\tip6-allrouters\n"

// HostsOptions describe a container's /etc/hosts.
type HostsOptions struct {
	Hostname   string
	Domainname string
	// IP is the container's address on its network; empty while it has
	// only loopback, in which case the hostname maps to 127.0.0.1 so that
	// it still resolves.
	IP string
	// ExtraHosts are "name:ip" entries (--add-host), written as given.
	ExtraHosts []string
}

// BuildHosts renders a private network's /etc/hosts the way Docker does:
// the loopback and IPv6 lines, the extra hosts, then the container's own.
func BuildHosts(o HostsOptions) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(defaultHosts)
	if err := writeExtraHosts(&b, o.ExtraHosts); err != nil {
		return nil, err
	}
	if o.Hostname != "" {
		ip := o.IP
		if ip == "" {
			ip = "127.0.0.1"
		}
		names := o.Hostname
		if o.Domainname != "" {
			names = o.Hostname + "." + o.Domainname + " " + o.Hostname
		}
		fmt.Fprintf(&b, "%s\t%s\n", ip, names)
	}
	return b.Bytes(), nil
}

// HostNetworkHosts is /etc/hosts of a container on the host's network: a
// copy of the host's file with the extra hosts appended.
func HostNetworkHosts(host []byte, extra []string) ([]byte, error) {
	var b bytes.Buffer
	b.Write(host)
	if len(host) > 0 && host[len(host)-1] != '\n' {
		b.WriteByte('\n')
	}
	if err := writeExtraHosts(&b, extra); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeExtraHosts(b *bytes.Buffer, extra []string) error {
	for _, e := range extra {
		// "name:ip"; the ip may itself hold colons (IPv6), so split at
		// the first one, as Docker does.
		name, ip, ok := strings.Cut(e, ":")
		if !ok || name == "" {
			return fmt.Errorf("invalid extra host %q: want name:ip", e)
		}
		ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
		if _, err := netip.ParseAddr(ip); err != nil {
			return fmt.Errorf("invalid IP address in add-host: %q", ip)
		}
		fmt.Fprintf(b, "%s\t%s\n", ip, name)
	}
	return nil
}

// ResolvOptions override parts of the host's resolv.conf (--dns,
// --dns-search, --dns-option).
type ResolvOptions struct {
	Nameservers []string
	Search      []string
	Options     []string
	// IPv6 keeps IPv6 nameservers of the host's file (the container's
	// network has IPv6).
	IPv6 bool
}

// Docker's fallbacks when the host has only local nameservers.
var (
	defaultIPv4DNS = []string{"8.8.8.8", "8.8.4.4"}
	defaultIPv6DNS = []string{"2001:4860:4860::8888", "2001:4860:4860::8844"}
)

// BuildResolvConf derives a private network's resolv.conf from the host's
// as Docker does: nameservers on loopback cannot be reached from another
// network namespace and are dropped (IPv6 ones too unless the network has
// IPv6); with none left, Google's public servers are used. Explicit
// options replace the corresponding lines.
func BuildResolvConf(host []byte, o ResolvOptions) ([]byte, error) {
	for _, ns := range o.Nameservers {
		if _, err := netip.ParseAddr(ns); err != nil {
			return nil, fmt.Errorf("%s is not an ip address", ns)
		}
	}
	var (
		out     bytes.Buffer
		servers []string
		search  []string
		options []string
		others  []string
	)
	sc := bufio.NewScanner(bytes.NewReader(host))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			others = append(others, line)
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) < 2 {
				continue
			}
			addr, err := netip.ParseAddr(strings.SplitN(f[1], "%", 2)[0])
			if err != nil || addr.IsLoopback() || (addr.Is6() && !addr.Is4In6() && !o.IPv6) {
				continue
			}
			servers = append(servers, f[1])
		case "search", "domain":
			search = f[1:]
		case "options":
			options = append(options, f[1:]...)
		default:
			others = append(others, line)
		}
	}
	if len(o.Nameservers) > 0 {
		servers = o.Nameservers
	} else if len(servers) == 0 {
		servers = append(servers, defaultIPv4DNS...)
		if o.IPv6 {
			servers = append(servers, defaultIPv6DNS...)
		}
	}
	if len(o.Search) > 0 {
		search = o.Search
		// "--dns-search ." means no search domains.
		if len(search) == 1 && search[0] == "." {
			search = nil
		}
	}
	if len(o.Options) > 0 {
		options = o.Options
	}
	for _, l := range others {
		if strings.TrimSpace(l) == "" {
			continue
		}
		out.WriteString(l + "\n")
	}
	for _, s := range servers {
		out.WriteString("nameserver " + s + "\n")
	}
	if len(search) > 0 {
		out.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	if len(options) > 0 {
		out.WriteString("options " + strings.Join(options, " ") + "\n")
	}
	return out.Bytes(), nil
}
