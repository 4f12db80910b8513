package cli

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client/pkg/security"
)

// clientInfo is the Client part of `berth info` (berth has no CLI
// plugins; the list stays empty).
type clientInfo struct {
	Debug bool
	clientVersion
	Plugins  []struct{}
	Warnings []string
}

// infoData is what `berth info --format` templates see, shaped like
// docker's: the daemon's /info fields at the top level, plus the client.
type infoData struct {
	*system.Info `json:",omitempty"`
	ServerErrors []string `json:",omitempty"`

	ClientInfo   *clientInfo `json:",omitempty"`
	ClientErrors []string    `json:",omitempty"`
}

// infoPlaceholder finds a field reference in a template; a template
// without one (or one that fails on the client part alone) needs /info.
var infoPlaceholder = regexp.MustCompile(`\.[a-zA-Z]`)

// needsServerInfo says whether a --format template reads daemon fields, so
// `berth info --format '{{.ClientInfo.Version}}'` works without a daemon.
func needsServerInfo(format string, info infoData) bool {
	switch format {
	case "", jsonFormat, jsonFormatKey:
		return true
	}
	if infoPlaceholder.FindString(format) == "" {
		return true
	}
	t, err := parseTemplateRaw(format)
	if err != nil {
		return true
	}
	sparse := struct {
		ClientInfo   *clientInfo `json:",omitempty"`
		ClientErrors []string    `json:",omitempty"`
	}{ClientInfo: info.ClientInfo, ClientErrors: info.ClientErrors}
	return t.Execute(io.Discard, sparse) != nil
}

// writeInfo prints docker's human layout of `info`. It returns an error
// when the daemon reported one (printed on errOut as "ERROR: …").
func writeInfo(out, errOut io.Writer, info infoData) error {
	fmt.Fprintln(out, "Client:")
	if info.ClientInfo != nil {
		c := info.ClientInfo
		if c.Version != "" {
			fmt.Fprintln(out, " Version:   ", c.Version)
		}
		fmt.Fprintln(out, " Context:   ", c.Context)
		fmt.Fprintln(out, " Debug Mode:", c.Debug)
		if len(c.Warnings) > 0 {
			fmt.Fprintln(errOut, strings.Join(c.Warnings, "\n"))
		}
	}
	for _, e := range info.ClientErrors {
		fmt.Fprintln(errOut, "ERROR:", e)
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Server:")
	if info.Info != nil {
		writeServerInfo(out, errOut, info.Info, info.ClientInfo != nil && info.ClientInfo.Debug)
	}
	for _, e := range info.ServerErrors {
		fmt.Fprintln(errOut, "ERROR:", e)
	}
	if len(info.ServerErrors) > 0 || len(info.ClientErrors) > 0 {
		return fmt.Errorf("errors pretty printing info")
	}
	return nil
}

func printNonEmpty(w io.Writer, label, value string) {
	if value != "" {
		fmt.Fprintln(w, label, value)
	}
}

func writeServerInfo(out, errOut io.Writer, info *system.Info, clientDebug bool) {
	fmt.Fprintln(out, " Containers:", info.Containers)
	fmt.Fprintln(out, "  Running:", info.ContainersRunning)
	fmt.Fprintln(out, "  Paused:", info.ContainersPaused)
	fmt.Fprintln(out, "  Stopped:", info.ContainersStopped)
	fmt.Fprintln(out, " Images:", info.Images)
	printNonEmpty(out, " Server Version:", info.ServerVersion)
	printNonEmpty(out, " Storage Driver:", info.Driver)
	for _, pair := range info.DriverStatus {
		fmt.Fprintf(out, "  %s: %s\n", pair[0], pair[1])
	}
	for _, pair := range info.SystemStatus {
		fmt.Fprintf(out, " %s: %s\n", pair[0], pair[1])
	}
	printNonEmpty(out, " Logging Driver:", info.LoggingDriver)
	printNonEmpty(out, " Cgroup Driver:", info.CgroupDriver)
	printNonEmpty(out, " Cgroup Version:", info.CgroupVersion)

	fmt.Fprintln(out, " Plugins:")
	fmt.Fprintln(out, "  Volume:", strings.Join(info.Plugins.Volume, " "))
	fmt.Fprintln(out, "  Network:", strings.Join(info.Plugins.Network, " "))
	if len(info.Plugins.Authorization) != 0 {
		fmt.Fprintln(out, "  Authorization:", strings.Join(info.Plugins.Authorization, " "))
	}
	fmt.Fprintln(out, "  Log:", strings.Join(info.Plugins.Log, " "))
	if len(info.CDISpecDirs) > 0 {
		fmt.Fprintln(out, " CDI spec directories:")
		for _, dir := range info.CDISpecDirs {
			fmt.Fprintf(out, "  %s\n", dir)
		}
	}
	if len(info.DiscoveredDevices) > 0 {
		fmt.Fprintln(out, " Discovered Devices:")
		for _, d := range info.DiscoveredDevices {
			fmt.Fprintf(out, "  %s: %s\n", d.Source, d.ID)
		}
	}

	fmt.Fprintln(out, " Swarm:", info.Swarm.LocalNodeState)
	if s := info.Swarm; s.LocalNodeState != swarm.LocalNodeStateInactive && s.LocalNodeState != swarm.LocalNodeStateLocked {
		// berthd has no swarm mode; show what a swarm daemon would say
		// about this node without the cluster details.
		fmt.Fprintln(out, "  NodeID:", s.NodeID)
		if s.Error != "" {
			fmt.Fprintln(out, "  Error:", s.Error)
		}
		fmt.Fprintln(out, "  Is Manager:", s.ControlAvailable)
		fmt.Fprintln(out, "  Node Address:", s.NodeAddr)
	}

	if len(info.Runtimes) > 0 {
		names := make([]string, 0, len(info.Runtimes))
		for name := range info.Runtimes {
			names = append(names, name)
		}
		sort.Strings(names)
		fmt.Fprintln(out, " Runtimes:", strings.Join(names, " "))
		fmt.Fprintln(out, " Default Runtime:", info.DefaultRuntime)
	}

	if info.OSType == "linux" {
		fmt.Fprintln(out, " Init Binary:", info.InitBinary)
		fmt.Fprintln(out, " containerd version:", info.ContainerdCommit.ID)
		fmt.Fprintln(out, " runc version:", info.RuncCommit.ID)
		fmt.Fprintln(out, " init version:", info.InitCommit.ID)
		if opts := security.DecodeOptions(info.SecurityOptions); len(opts) != 0 {
			fmt.Fprintln(out, " Security Options:")
			for _, so := range opts {
				fmt.Fprintln(out, "  "+so.Name)
				for _, o := range so.Options {
					if o.Key == "profile" {
						fmt.Fprintln(out, "   Profile:", o.Value)
					}
				}
			}
		}
	}
	if info.OSType == "windows" {
		fmt.Fprintln(out, " Default Isolation:", info.Isolation)
	}

	printNonEmpty(out, " Kernel Version:", info.KernelVersion)
	printNonEmpty(out, " Operating System:", info.OperatingSystem)
	printNonEmpty(out, " OSType:", info.OSType)
	printNonEmpty(out, " Architecture:", info.Architecture)
	fmt.Fprintln(out, " CPUs:", info.NCPU)
	fmt.Fprintln(out, " Total Memory:", units.BytesSize(float64(info.MemTotal)))
	printNonEmpty(out, " Name:", info.Name)
	printNonEmpty(out, " ID:", info.ID)
	fmt.Fprintln(out, " Docker Root Dir:", info.DockerRootDir)
	fmt.Fprintln(out, " Debug Mode:", info.Debug)
	if info.Debug || clientDebug {
		fmt.Fprintln(out, "  File Descriptors:", info.NFd)
		fmt.Fprintln(out, "  Goroutines:", info.NGoroutines)
		fmt.Fprintln(out, "  System Time:", info.SystemTime)
		fmt.Fprintln(out, "  EventsListeners:", info.NEventsListener)
	}
	printNonEmpty(out, " HTTP Proxy:", info.HTTPProxy)
	printNonEmpty(out, " HTTPS Proxy:", info.HTTPSProxy)
	printNonEmpty(out, " No Proxy:", info.NoProxy)
	if len(info.Labels) > 0 {
		fmt.Fprintln(out, " Labels:")
		for _, l := range info.Labels {
			fmt.Fprintln(out, "  "+l)
		}
	}
	fmt.Fprintln(out, " Experimental:", info.ExperimentalBuild)

	if rc := info.RegistryConfig; rc != nil && (len(rc.InsecureRegistryCIDRs) > 0 || len(rc.IndexConfigs) > 0) {
		fmt.Fprintln(out, " Insecure Registries:")
		names := make([]string, 0, len(rc.IndexConfigs))
		for name := range rc.IndexConfigs {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if ic := rc.IndexConfigs[name]; ic != nil && !ic.Secure {
				fmt.Fprintln(out, "  "+ic.Name)
			}
		}
		for _, cidr := range rc.InsecureRegistryCIDRs {
			fmt.Fprintf(out, "  %s\n", cidr)
		}
	}
	if rc := info.RegistryConfig; rc != nil && len(rc.Mirrors) > 0 {
		fmt.Fprintln(out, " Registry Mirrors:")
		for _, m := range rc.Mirrors {
			fmt.Fprintln(out, "  "+m)
		}
	}
	fmt.Fprintln(out, " Live Restore Enabled:", info.LiveRestoreEnabled)
	if info.ProductLicense != "" {
		fmt.Fprintln(out, " Product License:", info.ProductLicense)
	}
	if len(info.DefaultAddressPools) > 0 {
		fmt.Fprintln(out, " Default Address Pools:")
		for _, p := range info.DefaultAddressPools {
			fmt.Fprintf(out, "   Base: %s, Size: %d\n", p.Base, p.Size)
		}
	}
	if fb := info.FirewallBackend; fb != nil {
		fmt.Fprintln(out, " Firewall Backend:", fb.Driver)
		for _, v := range fb.Info {
			fmt.Fprintf(out, "  %s: %s\n", v[0], v[1])
		}
	}
	if info.NRI != nil {
		fmt.Fprintln(out, " NRI:")
		for _, v := range info.NRI.Info {
			fmt.Fprintf(out, "  %s: %s\n", v[0], v[1])
		}
	}
	fmt.Fprintln(out)
	for _, w := range info.Warnings {
		fmt.Fprintln(errOut, w)
	}
}

// writeInfoFormat executes a --format template on info.
func writeInfoFormat(out io.Writer, info infoData, format string) error {
	if format == jsonFormatKey {
		format = jsonFormat
	}
	if info.ClientInfo != nil && info.ClientInfo.Plugins == nil {
		info.ClientInfo.Plugins = make([]struct{}, 0)
	}
	t, err := parseTemplateRaw(format)
	if err != nil {
		return statusError{status: "template parsing error: " + err.Error(), code: 64}
	}
	err = t.Execute(out, info)
	fmt.Fprintln(out)
	return err
}
