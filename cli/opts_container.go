package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/docker/cli/opts"
	"github.com/docker/go-connections/nat"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

// containerOptions are the flags `run` and `create` share, with the docker
// CLI's names, types and defaults. The option types come from docker/cli's
// opts package, so values are validated and converted exactly as docker
// does (memory sizes, ulimits, --mount CSV, restart policies, env files).
type containerOptions struct {
	attach            opts.ListOpts
	volumes           opts.ListOpts
	tmpfs             opts.ListOpts
	mounts            opts.MountOpt
	links             opts.ListOpts
	aliases           opts.ListOpts
	env               opts.ListOpts
	envFile           opts.ListOpts
	labels            opts.ListOpts
	labelsFile        opts.ListOpts
	devices           opts.ListOpts
	deviceCgroupRules opts.ListOpts
	gpus              opts.GpuOpts
	blkioWeightDevice opts.WeightdeviceOpt
	deviceReadBps     opts.ThrottledeviceOpt
	deviceWriteBps    opts.ThrottledeviceOpt
	deviceReadIOps    opts.ThrottledeviceOpt
	deviceWriteIOps   opts.ThrottledeviceOpt
	linkLocalIPs      opts.ListOpts
	ulimits           *opts.UlimitOpt
	sysctls           *opts.MapOpts
	annotations       *opts.MapOpts
	publish           opts.ListOpts
	expose            opts.ListOpts
	dns               opts.ListOpts
	dnsSearch         opts.ListOpts
	dnsOptions        opts.ListOpts
	extraHosts        opts.ListOpts
	volumesFrom       opts.ListOpts
	capAdd            opts.ListOpts
	capDrop           opts.ListOpts
	groupAdd          opts.ListOpts
	securityOpt       opts.ListOpts
	storageOpt        opts.ListOpts
	loggingOpts       opts.ListOpts
	privileged        bool
	pidMode           string
	utsMode           string
	usernsMode        string
	cgroupnsMode      string
	ipcMode           string
	publishAll        bool
	stdin             bool
	tty               bool
	oomKillDisable    bool
	oomScoreAdj       int
	containerIDFile   string
	entrypoint        string
	hostname          string
	domainname        string
	memory            opts.MemBytes
	memoryReservation opts.MemBytes
	memorySwap        opts.MemSwapBytes
	swappiness        int64
	user              string
	workingDir        string
	cpuShares         int64
	cpuPeriod         int64
	cpuQuota          int64
	cpuRtPeriod       int64
	cpuRtRuntime      int64
	cpus              opts.NanoCPUs
	cpusetCpus        string
	cpusetMems        string
	blkioWeight       uint16
	cpuCount          int64
	cpuPercent        int64
	ioMaxBandwidth    opts.MemBytes
	ioMaxIOps         uint64
	isolation         string
	kernelMemory      opts.MemBytes
	netMode           opts.NetworkOpt
	macAddress        string
	ipv4Address       string
	ipv6Address       string
	pidsLimit         int64
	restartPolicy     string
	readonlyRootfs    bool
	loggingDriver     string
	cgroupParent      string
	volumeDriver      string
	stopSignal        string
	stopTimeout       int
	shmSize           opts.MemBytes
	noHealthcheck     bool
	healthCmd         string
	healthInterval    time.Duration
	healthTimeout     time.Duration
	healthStart       time.Duration
	healthStartIntvl  time.Duration
	healthRetries     int
	runtime           string
	autoRemove        bool
	init              bool

	image string
	args  []string
}

// addContainerFlags registers the container flags on fs and returns the
// options they fill.
func addContainerFlags(fs *pflag.FlagSet) *containerOptions {
	o := &containerOptions{
		aliases:    opts.NewListOpts(nil),
		attach:     opts.NewListOpts(validateAttach),
		capAdd:     opts.NewListOpts(nil),
		capDrop:    opts.NewListOpts(nil),
		dns:        opts.NewListOpts(opts.ValidateIPAddress),
		dnsOptions: opts.NewListOpts(nil),
		dnsSearch:  opts.NewListOpts(opts.ValidateDNSSearch),
		devices:    opts.NewListOpts(nil),
		// The cgroup rule is checked by the daemon.
		deviceCgroupRules: opts.NewListOpts(nil),
		blkioWeightDevice: opts.NewWeightdeviceOpt(opts.ValidateWeightDevice),
		deviceReadBps:     opts.NewThrottledeviceOpt(opts.ValidateThrottleBpsDevice),
		deviceWriteBps:    opts.NewThrottledeviceOpt(opts.ValidateThrottleBpsDevice),
		deviceReadIOps:    opts.NewThrottledeviceOpt(opts.ValidateThrottleIOpsDevice),
		deviceWriteIOps:   opts.NewThrottledeviceOpt(opts.ValidateThrottleIOpsDevice),
		linkLocalIPs:      opts.NewListOpts(nil),
		env:               opts.NewListOpts(opts.ValidateEnv),
		envFile:           opts.NewListOpts(nil),
		expose:            opts.NewListOpts(nil),
		extraHosts:        opts.NewListOpts(opts.ValidateExtraHost),
		groupAdd:          opts.NewListOpts(nil),
		labels:            opts.NewListOpts(opts.ValidateLabel),
		labelsFile:        opts.NewListOpts(nil),
		links:             opts.NewListOpts(opts.ValidateLink),
		loggingOpts:       opts.NewListOpts(nil),
		publish:           opts.NewListOpts(nil),
		securityOpt:       opts.NewListOpts(nil),
		storageOpt:        opts.NewListOpts(nil),
		sysctls:           opts.NewMapOpts(nil, opts.ValidateSysctl),
		tmpfs:             opts.NewListOpts(nil),
		ulimits:           opts.NewUlimitOpt(nil),
		volumes:           opts.NewListOpts(nil),
		volumesFrom:       opts.NewListOpts(nil),
		annotations:       opts.NewMapOpts(nil, nil),
	}

	// General purpose
	fs.VarP(&o.attach, "attach", "a", "Attach to STDIN, STDOUT or STDERR")
	fs.Var(&o.deviceCgroupRules, "device-cgroup-rule", "Add a rule to the cgroup allowed devices list")
	fs.Var(&o.devices, "device", "Add a host device to the container")
	fs.Var(&o.gpus, "gpus", "GPU devices to add to the container ('all' to pass all GPUs)")
	fs.VarP(&o.env, "env", "e", "Set environment variables")
	fs.Var(&o.envFile, "env-file", "Read in a file of environment variables")
	fs.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fs.Var(&o.groupAdd, "group-add", "Add additional groups to join")
	fs.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	fs.StringVar(&o.domainname, "domainname", "", "Container NIS domain name")
	fs.BoolVarP(&o.stdin, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.VarP(&o.labels, "label", "l", "Set meta data on a container")
	fs.Var(&o.labelsFile, "label-file", "Read in a line delimited file of labels")
	fs.BoolVar(&o.readonlyRootfs, "read-only", false, "Mount the container's root filesystem as read only")
	fs.StringVar(&o.restartPolicy, "restart", string(container.RestartPolicyDisabled), "Restart policy to apply when a container exits")
	fs.StringVar(&o.stopSignal, "stop-signal", "", "Signal to stop the container")
	fs.IntVar(&o.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fs.Var(o.sysctls, "sysctl", "Sysctl options")
	fs.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.Var(o.ulimits, "ulimit", "Ulimit options")
	fs.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVarP(&o.workingDir, "workdir", "w", "", "Working directory inside the container")
	fs.BoolVar(&o.autoRemove, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")

	// Security
	fs.Var(&o.capAdd, "cap-add", "Add Linux capabilities")
	fs.Var(&o.capDrop, "cap-drop", "Drop Linux capabilities")
	fs.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	fs.Var(&o.securityOpt, "security-opt", "Security Options")
	fs.StringVar(&o.usernsMode, "userns", "", "User namespace to use")
	fs.StringVar(&o.cgroupnsMode, "cgroupns", "", `Cgroup namespace to use (host|private)
'host':    Run the container in the berth host's cgroup namespace
'private': Run the container in its own private cgroup namespace
'':        Use the cgroup namespace as configured by the
           default-cgroupns-mode option on the daemon (default)`)

	// Network and ports
	fs.Var(&o.extraHosts, "add-host", "Add a custom host-to-IP mapping (host:ip)")
	fs.Var(&o.dns, "dns", "Set custom DNS servers")
	fs.Var(&o.dnsOptions, "dns-opt", "Set DNS options")
	fs.Var(&o.dnsOptions, "dns-option", "Set DNS options")
	_ = fs.MarkHidden("dns-opt")
	fs.Var(&o.dnsSearch, "dns-search", "Set custom DNS search domains")
	fs.Var(&o.expose, "expose", "Expose a port or a range of ports")
	fs.StringVar(&o.ipv4Address, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	fs.StringVar(&o.ipv6Address, "ip6", "", "IPv6 address (e.g., 2001:db8::33)")
	fs.Var(&o.links, "link", "Add link to another container")
	fs.Var(&o.linkLocalIPs, "link-local-ip", "Container IPv4/IPv6 link-local addresses")
	fs.StringVar(&o.macAddress, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
	fs.VarP(&o.publish, "publish", "p", "Publish a container's port(s) to the host")
	fs.BoolVarP(&o.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	fs.Var(&o.netMode, "net", "Connect a container to a network")
	fs.Var(&o.netMode, "network", "Connect a container to a network")
	_ = fs.MarkHidden("net")
	fs.Var(&o.aliases, "net-alias", "Add network-scoped alias for the container")
	fs.Var(&o.aliases, "network-alias", "Add network-scoped alias for the container")
	_ = fs.MarkHidden("net-alias")

	// Logging and storage
	fs.StringVar(&o.loggingDriver, "log-driver", "", "Logging driver for the container")
	fs.StringVar(&o.volumeDriver, "volume-driver", "", "Optional volume driver for the container")
	fs.Var(&o.loggingOpts, "log-opt", "Log driver options")
	fs.Var(&o.storageOpt, "storage-opt", "Storage driver options for the container")
	fs.Var(&o.tmpfs, "tmpfs", "Mount a tmpfs directory")
	fs.Var(&o.volumesFrom, "volumes-from", "Mount volumes from the specified container(s)")
	fs.VarP(&o.volumes, "volume", "v", "Bind mount a volume")
	fs.Var(&o.mounts, "mount", "Attach a filesystem mount to the container")

	// Health checks
	fs.StringVar(&o.healthCmd, "health-cmd", "", "Command to run to check health")
	fs.DurationVar(&o.healthInterval, "health-interval", 0, "Time between running the check (ms|s|m|h) (default 0s)")
	fs.IntVar(&o.healthRetries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	fs.DurationVar(&o.healthTimeout, "health-timeout", 0, "Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	fs.DurationVar(&o.healthStart, "health-start-period", 0, "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	fs.DurationVar(&o.healthStartIntvl, "health-start-interval", 0, "Time between running the check during the start period (ms|s|m|h) (default 0s)")
	_ = fs.SetAnnotation("health-start-interval", annotationMinAPI, []string{"1.44"})
	fs.BoolVar(&o.noHealthcheck, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")

	// Resources
	fs.Uint16Var(&o.blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	fs.Var(&o.blkioWeightDevice, "blkio-weight-device", "Block IO weight (relative device weight)")
	fs.Int64Var(&o.cpuCount, "cpu-count", 0, "CPU count (Windows only)")
	fs.Int64Var(&o.cpuPercent, "cpu-percent", 0, "CPU percent (Windows only)")
	fs.Var(&o.deviceReadBps, "device-read-bps", "Limit read rate (bytes per second) from a device")
	fs.Var(&o.deviceReadIOps, "device-read-iops", "Limit read rate (IO per second) from a device")
	fs.Var(&o.deviceWriteBps, "device-write-bps", "Limit write rate (bytes per second) to a device")
	fs.Var(&o.deviceWriteIOps, "device-write-iops", "Limit write rate (IO per second) to a device")
	fs.Var(&o.ioMaxBandwidth, "io-maxbandwidth", "Maximum IO bandwidth limit for the system drive (Windows only)")
	fs.Uint64Var(&o.ioMaxIOps, "io-maxiops", 0, "Maximum IOps limit for the system drive (Windows only)")
	fs.Var(&o.kernelMemory, "kernel-memory", "Kernel memory limit")
	fs.StringVar(&o.containerIDFile, "cidfile", "", "Write the container ID to the file")
	fs.StringVar(&o.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fs.Int64Var(&o.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fs.Int64Var(&o.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fs.Int64Var(&o.cpuRtPeriod, "cpu-rt-period", 0, "Limit CPU real-time period in microseconds")
	fs.Int64Var(&o.cpuRtRuntime, "cpu-rt-runtime", 0, "Limit CPU real-time runtime in microseconds")
	fs.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.Var(&o.cpus, "cpus", "Number of CPUs")
	fs.VarP(&o.memory, "memory", "m", "Memory limit")
	fs.Var(&o.memoryReservation, "memory-reservation", "Memory soft limit")
	fs.Var(&o.memorySwap, "memory-swap", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fs.Int64Var(&o.swappiness, "memory-swappiness", -1, "Tune container memory swappiness (0 to 100)")
	fs.BoolVar(&o.oomKillDisable, "oom-kill-disable", false, "Disable OOM Killer")
	fs.IntVar(&o.oomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
	fs.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")

	// Low-level execution
	fs.StringVar(&o.cgroupParent, "cgroup-parent", "", "Optional parent cgroup for the container")
	fs.StringVar(&o.ipcMode, "ipc", "", "IPC mode to use")
	fs.StringVar(&o.isolation, "isolation", "", "Container isolation technology")
	fs.StringVar(&o.pidMode, "pid", "", "PID namespace to use")
	fs.Var(&o.shmSize, "shm-size", "Size of /dev/shm")
	fs.StringVar(&o.utsMode, "uts", "", "UTS namespace to use")
	fs.StringVar(&o.runtime, "runtime", "", "Runtime to use for this container")
	fs.BoolVar(&o.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	fs.Var(o.annotations, "annotation", "Add an annotation to the container (passed through to the OCI runtime)")
	_ = fs.SetAnnotation("annotation", annotationMinAPI, []string{"1.43"})
	return o
}

// containerConfig is the body of POST /containers/create.
type containerConfig struct {
	Config           *container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
}

// parse turns the flags into the create request, with the docker CLI's
// validation and messages.
func (o *containerOptions) parse(fs *pflag.FlagSet) (*containerConfig, error) {
	attachStdin := o.attach.Get("stdin")
	attachStdout := o.attach.Get("stdout")
	attachStderr := o.attach.Get("stderr")
	if o.macAddress != "" {
		if _, err := net.ParseMAC(strings.TrimSpace(o.macAddress)); err != nil {
			return nil, fmt.Errorf("%s is not a valid mac address", o.macAddress)
		}
	}
	if o.stdin {
		attachStdin = true
	}
	// Without -a, stdout and stderr are attached.
	if o.attach.Len() == 0 {
		attachStdout, attachStderr = true, true
	}
	if o.swappiness != -1 && (o.swappiness < 0 || o.swappiness > 100) {
		return nil, fmt.Errorf("invalid value: %d. Valid memory swappiness range is 0-100", o.swappiness)
	}

	// -v with a source (host path or volume name) is a bind; a bare target
	// is an anonymous volume, which goes to Config.Volumes.
	var binds []string
	volumes := o.volumes.GetMap()
	for _, spec := range o.volumes.GetSlice() {
		if _, pending := volumes[spec]; !pending {
			continue // a repeated -v
		}
		v, err := parseVolumeSpec(spec)
		if err != nil {
			return nil, err
		}
		if v.source == "" {
			continue
		}
		bind := spec
		if v.bind {
			if host, target, ok := strings.Cut(spec, ":"); ok {
				if !filepath.IsAbs(host) && strings.HasPrefix(host, ".") {
					if abs, err := filepath.Abs(host); err == nil {
						host = abs
					}
				}
				bind = host + ":" + target
			}
		}
		binds = append(binds, bind)
		delete(volumes, spec)
	}

	tmpfs := make(map[string]string)
	for _, t := range o.tmpfs.GetSlice() {
		k, v, _ := strings.Cut(t, ":")
		tmpfs[k] = v
	}

	var runCmd, entrypoint []string
	if len(o.args) > 0 {
		runCmd = o.args
	}
	if o.entrypoint != "" {
		entrypoint = []string{o.entrypoint}
	} else if fs.Changed("entrypoint") {
		// --entrypoint= resets the image's entrypoint.
		entrypoint = []string{""}
	}

	exposed, bindings, err := parsePorts(o.publish.GetSlice(), o.expose.GetSlice())
	if err != nil {
		return nil, err
	}

	devices := make([]container.DeviceMapping, 0, o.devices.Len())
	for _, d := range o.devices.GetSlice() {
		if err := validateDevicePath(d); err != nil {
			return nil, err
		}
		m, err := parseLinuxDevice(d)
		if err != nil {
			return nil, err
		}
		devices = append(devices, m)
	}

	env, err := opts.ReadKVEnvStrings(o.envFile.GetSlice(), o.env.GetSlice())
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	labels, err := opts.ReadKVStrings(o.labelsFile.GetSlice(), o.labels.GetSlice())
	if err != nil {
		return nil, fmt.Errorf("--label-file: %w", err)
	}

	pidMode := container.PidMode(o.pidMode)
	if !pidMode.Valid() {
		return nil, errors.New("--pid: invalid PID mode")
	}
	utsMode := container.UTSMode(o.utsMode)
	if !utsMode.Valid() {
		return nil, errors.New("--uts: invalid UTS mode")
	}
	usernsMode := container.UsernsMode(o.usernsMode)
	if !usernsMode.Valid() {
		return nil, errors.New("--userns: invalid USER mode")
	}
	cgroupnsMode := container.CgroupnsMode(o.cgroupnsMode)
	if !cgroupnsMode.Valid() {
		return nil, errors.New("--cgroupns: invalid CGROUP mode")
	}
	restartPolicy, err := opts.ParseRestartPolicy(o.restartPolicy)
	if err != nil {
		return nil, err
	}
	logOpts := opts.ConvertKVStringsToMap(o.loggingOpts.GetSlice())
	if o.loggingDriver == "none" && o.loggingOpts.Len() > 0 {
		return nil, fmt.Errorf("invalid logging opts for driver %s", o.loggingDriver)
	}
	securityOpts, err := parseSecurityOpts(o.securityOpt.GetSlice())
	if err != nil {
		return nil, err
	}
	securityOpts, maskedPaths, readonlyPaths := parseSystemPaths(securityOpts)
	storageOpts := make(map[string]string)
	for _, s := range o.storageOpt.GetSlice() {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, errors.New("invalid storage option")
		}
		storageOpts[k] = v
	}
	health, err := o.healthConfig()
	if err != nil {
		return nil, err
	}

	resources := container.Resources{
		CgroupParent:         o.cgroupParent,
		Memory:               o.memory.Value(),
		MemoryReservation:    o.memoryReservation.Value(),
		MemorySwap:           o.memorySwap.Value(),
		MemorySwappiness:     &o.swappiness,
		OomKillDisable:       &o.oomKillDisable,
		NanoCPUs:             o.cpus.Value(),
		CPUShares:            o.cpuShares,
		CPUPeriod:            o.cpuPeriod,
		CPUQuota:             o.cpuQuota,
		CPURealtimePeriod:    o.cpuRtPeriod,
		CPURealtimeRuntime:   o.cpuRtRuntime,
		CpusetCpus:           o.cpusetCpus,
		CpusetMems:           o.cpusetMems,
		PidsLimit:            &o.pidsLimit,
		BlkioWeight:          o.blkioWeight,
		BlkioWeightDevice:    o.blkioWeightDevice.GetList(),
		BlkioDeviceReadBps:   o.deviceReadBps.GetList(),
		BlkioDeviceWriteBps:  o.deviceWriteBps.GetList(),
		BlkioDeviceReadIOps:  o.deviceReadIOps.GetList(),
		BlkioDeviceWriteIOps: o.deviceWriteIOps.GetList(),
		CPUCount:             o.cpuCount,
		CPUPercent:           o.cpuPercent,
		IOMaximumIOps:        o.ioMaxIOps,
		IOMaximumBandwidth:   uint64(o.ioMaxBandwidth.Value()),
		Ulimits:              o.ulimits.GetList(),
		DeviceCgroupRules:    o.deviceCgroupRules.GetSlice(),
		Devices:              devices,
		DeviceRequests:       o.gpus.Value(),
	}

	config := &container.Config{
		Hostname:     o.hostname,
		Domainname:   o.domainname,
		ExposedPorts: exposed,
		User:         o.user,
		Tty:          o.tty,
		OpenStdin:    o.stdin,
		AttachStdin:  attachStdin,
		AttachStdout: attachStdout,
		AttachStderr: attachStderr,
		Env:          env,
		Cmd:          runCmd,
		Image:        o.image,
		Volumes:      volumes,
		Entrypoint:   entrypoint,
		WorkingDir:   o.workingDir,
		Labels:       opts.ConvertKVStringsToMap(labels),
		StopSignal:   o.stopSignal,
		Healthcheck:  health,
	}
	if fs.Changed("stop-timeout") {
		config.StopTimeout = &o.stopTimeout
	}

	hostConfig := &container.HostConfig{
		Binds:           binds,
		ContainerIDFile: o.containerIDFile,
		OomScoreAdj:     o.oomScoreAdj,
		AutoRemove:      o.autoRemove,
		Privileged:      o.privileged,
		PortBindings:    bindings,
		Links:           o.links.GetSlice(),
		PublishAllPorts: o.publishAll,
		// The DNS lists are never nil on a new container, as with docker.
		DNS:            toAddrs(o.dns.GetAllOrEmpty()),
		DNSSearch:      o.dnsSearch.GetAllOrEmpty(),
		DNSOptions:     o.dnsOptions.GetAllOrEmpty(),
		ExtraHosts:     o.extraHosts.GetSlice(),
		VolumesFrom:    o.volumesFrom.GetSlice(),
		IpcMode:        container.IpcMode(o.ipcMode),
		NetworkMode:    container.NetworkMode(o.netMode.NetworkMode()),
		PidMode:        pidMode,
		UTSMode:        utsMode,
		UsernsMode:     usernsMode,
		CgroupnsMode:   cgroupnsMode,
		CapAdd:         o.capAdd.GetSlice(),
		CapDrop:        o.capDrop.GetSlice(),
		GroupAdd:       o.groupAdd.GetSlice(),
		RestartPolicy:  restartPolicy,
		SecurityOpt:    securityOpts,
		StorageOpt:     storageOpts,
		ReadonlyRootfs: o.readonlyRootfs,
		LogConfig:      container.LogConfig{Type: o.loggingDriver, Config: logOpts},
		VolumeDriver:   o.volumeDriver,
		ShmSize:        o.shmSize.Value(),
		Isolation:      container.Isolation(o.isolation),
		Resources:      resources,
		Tmpfs:          tmpfs,
		Sysctls:        o.sysctls.GetAll(),
		Runtime:        o.runtime,
		Mounts:         o.mounts.Value(),
		MaskedPaths:    maskedPaths,
		ReadonlyPaths:  readonlyPaths,
		Annotations:    o.annotations.GetAll(),
	}
	if o.autoRemove && !hostConfig.RestartPolicy.IsNone() {
		return nil, errors.New("conflicting options: cannot specify both --restart and --rm")
	}
	if fs.Changed("init") {
		hostConfig.Init = &o.init
	}
	// Stdin opened and attached is closed when the client detaches.
	if config.OpenStdin && config.AttachStdin {
		config.StdinOnce = true
	}
	endpoints, err := o.endpoints()
	if err != nil {
		return nil, err
	}
	return &containerConfig{
		Config:           config,
		HostConfig:       hostConfig,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: endpoints},
	}, nil
}

func (o *containerOptions) healthConfig() (*container.HealthConfig, error) {
	have := o.healthCmd != "" || o.healthInterval != 0 || o.healthTimeout != 0 ||
		o.healthStart != 0 || o.healthRetries != 0 || o.healthStartIntvl != 0
	if o.noHealthcheck {
		if have {
			return nil, errors.New("--no-healthcheck conflicts with --health-* options")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	if !have {
		return nil, nil
	}
	for _, c := range []struct {
		name string
		neg  bool
	}{
		{"interval", o.healthInterval < 0},
		{"timeout", o.healthTimeout < 0},
		{"retries", o.healthRetries < 0},
		{"start-period", o.healthStart < 0},
		{"start-interval", o.healthStartIntvl < 0},
	} {
		if c.neg {
			return nil, fmt.Errorf("--health-%s cannot be negative", c.name)
		}
	}
	var probe []string
	if o.healthCmd != "" {
		probe = []string{"CMD-SHELL", o.healthCmd}
	}
	return &container.HealthConfig{
		Test:          probe,
		Interval:      o.healthInterval,
		Timeout:       o.healthTimeout,
		StartPeriod:   o.healthStart,
		StartInterval: o.healthStartIntvl,
		Retries:       o.healthRetries,
	}, nil
}

// endpoints is NetworkingConfig.EndpointsConfig as the docker CLI builds
// it: "default" without --network; with one plain --network, no endpoint
// settings at all (the daemon creates them).
func (o *containerOptions) endpoints() (map[string]*network.EndpointSettings, error) {
	nets := o.netMode.Value()
	eps := make(map[string]*network.EndpointSettings, len(nets))
	if len(nets) == 0 {
		n := opts.NetworkAttachmentOpts{Target: "default"}
		if err := o.applyEndpointFlags(&n); err != nil {
			return nil, err
		}
		ep, err := endpointSettings(n)
		if err != nil {
			return nil, err
		}
		eps["default"] = ep
		return eps, nil
	}
	var userDefined, builtin bool
	for i, n := range nets {
		if container.NetworkMode(n.Target).IsUserDefined() {
			userDefined = true
		} else {
			builtin = true
		}
		if i == 0 {
			if err := o.applyEndpointFlags(&n); err != nil {
				return nil, err
			}
		}
		ep, err := endpointSettings(n)
		if err != nil {
			return nil, err
		}
		if _, dup := eps[n.Target]; dup {
			return nil, fmt.Errorf("network %q is specified multiple times", n.Target)
		}
		if i == 0 && len(nets) == 1 && (ep == nil || isZeroEndpoint(ep)) {
			continue
		}
		eps[n.Target] = ep
	}
	if userDefined && builtin {
		return nil, errors.New("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
	}
	return eps, nil
}

func isZeroEndpoint(ep *network.EndpointSettings) bool {
	return ep.GwPriority == 0 && len(ep.Aliases) == 0 && len(ep.DriverOpts) == 0 && len(ep.Links) == 0 &&
		ep.IPAMConfig == nil && len(ep.MacAddress) == 0
}

// applyEndpointFlags moves --network-alias, --link, --ip, --ip6 and
// --mac-address onto the first network, refusing them twice.
func (o *containerOptions) applyEndpointFlags(n *opts.NetworkAttachmentOpts) error {
	switch {
	case len(n.Aliases) > 0 && o.aliases.Len() > 0:
		return errors.New("conflicting options: cannot specify both --network-alias and per-network alias")
	case len(n.Links) > 0 && o.links.Len() > 0:
		return errors.New("conflicting options: cannot specify both --link and per-network links")
	case n.IPv4Address.IsValid() && o.ipv4Address != "":
		return errors.New("conflicting options: cannot specify both --ip and per-network IPv4 address")
	case n.IPv6Address.IsValid() && o.ipv6Address != "":
		return errors.New("conflicting options: cannot specify both --ip6 and per-network IPv6 address")
	case n.MacAddress != "" && o.macAddress != "":
		return errors.New("conflicting options: cannot specify both --mac-address and per-network MAC address")
	case len(n.LinkLocalIPs) > 0 && o.linkLocalIPs.Len() > 0:
		return errors.New("conflicting options: cannot specify both --link-local-ip and per-network link-local IP addresses")
	}
	if o.aliases.Len() > 0 {
		n.Aliases = slices.Clone(o.aliases.GetSlice())
	}
	// On a user-defined network --link is an alias; on the default bridge
	// it is a legacy link in HostConfig.
	if container.NetworkMode(n.Target).IsUserDefined() && o.links.Len() > 0 {
		n.Links = slices.Clone(o.links.GetSlice())
	}
	for _, ip := range []struct {
		flag, val string
		dst       *netip.Addr
	}{{"ip", o.ipv4Address, &n.IPv4Address}, {"ip6", o.ipv6Address, &n.IPv6Address}} {
		if ip.val == "" {
			continue
		}
		a, err := netip.ParseAddr(ip.val)
		if err != nil {
			return fmt.Errorf("invalid argument %q for \"--%s\" flag: %w", ip.val, ip.flag, err)
		}
		*ip.dst = a
	}
	if o.macAddress != "" {
		n.MacAddress = o.macAddress
	}
	if o.linkLocalIPs.Len() > 0 {
		n.LinkLocalIPs = toAddrs(o.linkLocalIPs.GetSlice())
	}
	return nil
}

func endpointSettings(n opts.NetworkAttachmentOpts) (*network.EndpointSettings, error) {
	if strings.TrimSpace(n.Target) == "" {
		return nil, errors.New("no name set for network")
	}
	if !container.NetworkMode(n.Target).IsUserDefined() {
		if len(n.Aliases) > 0 {
			return nil, errors.New("network-scoped aliases are only supported for user-defined networks")
		}
		if len(n.Links) > 0 {
			return nil, errors.New("links are only supported for user-defined networks")
		}
	}
	ep := &network.EndpointSettings{GwPriority: n.GwPriority}
	ep.Aliases = append(ep.Aliases, n.Aliases...)
	if len(n.DriverOpts) > 0 {
		ep.DriverOpts = n.DriverOpts
	}
	if len(n.Links) > 0 {
		ep.Links = n.Links
	}
	if n.IPv4Address.IsValid() || n.IPv6Address.IsValid() || len(n.LinkLocalIPs) > 0 {
		ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: n.IPv4Address, IPv6Address: n.IPv6Address, LinkLocalIPs: n.LinkLocalIPs}
	}
	if n.MacAddress != "" {
		ma, err := net.ParseMAC(strings.TrimSpace(n.MacAddress))
		if err != nil {
			return nil, fmt.Errorf("%s is not a valid mac address", n.MacAddress)
		}
		ep.MacAddress = network.HardwareAddr(ma)
	}
	return ep, nil
}

// volumeSpec is one -v value split the way the docker CLI's
// compose-style parser splits it: [SOURCE:]TARGET[:OPTIONS].
type volumeSpec struct {
	source, target, options string
	// bind: the source is a host path (starts with ".", "/" or "~", or
	// is a drive letter), not a volume name.
	bind bool
}

// parseVolumeSpec follows docker's parser rune by rune, quirks included:
// a single letter before a colon is a Windows drive ("c:"), so "a:b:c"
// is the source "a:b" and the target "c"; specs of one or two characters
// are anonymous volume targets whatever they contain.
func parseVolumeSpec(spec string) (volumeSpec, error) {
	var v volumeSpec
	switch len(spec) {
	case 0:
		return v, errors.New("invalid empty volume spec")
	case 1, 2:
		v.target = spec
		return v, nil
	}
	fill := func(end bool, buf []rune) error {
		s := string(buf)
		switch {
		case len(buf) == 0:
			return errors.New("empty section between colons")
		case v.source == "" && end:
			v.target = s
		case v.source == "":
			v.source = s
		case v.target == "":
			v.target = s
		case !end:
			return errors.New("too many colons")
		default:
			v.options = s
		}
		return nil
	}
	var buf []rune
	for _, c := range spec {
		switch {
		case c == ':' && isDriveLetter(buf):
			buf = append(buf, c)
		case c == ':':
			if err := fill(false, buf); err != nil {
				return v, fmt.Errorf("invalid spec: %s: %w", spec, err)
			}
			buf = buf[:0]
		default:
			buf = append(buf, c)
		}
	}
	if err := fill(true, buf); err != nil {
		return v, fmt.Errorf("invalid spec: %s: %w", spec, err)
	}
	if src := []rune(v.source); len(src) > 0 {
		v.bind = strings.ContainsRune("./~", src[0]) || (len(src) > 1 && isDriveLetter(src[:1]) && src[1] == ':')
	}
	return v, nil
}

func isDriveLetter(buf []rune) bool { return len(buf) == 1 && unicode.IsLetter(buf[0]) }

// parsePorts reads -p (short syntax or CSV "published=,target=") and
// --expose into exposed ports and port bindings.
func parsePorts(publish, expose []string) (network.PortSet, network.PortMap, error) {
	var specs []string
	for _, p := range publish {
		if !strings.Contains(p, "=") {
			specs = append(specs, p)
			continue
		}
		params := map[string]string{"protocol": "tcp"}
		for _, kv := range strings.Split(p, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, nil, fmt.Errorf("invalid publish opts format (should be name=value but got '%s')", kv)
			}
			params[k] = v
		}
		specs = append(specs, fmt.Sprintf("%s:%s/%s", params["published"], params["target"], params["protocol"]))
	}
	ports, natBindings, err := nat.ParsePortSpecs(specs)
	if err != nil {
		return nil, nil, err
	}
	bindings := network.PortMap{}
	for port, bs := range natBindings {
		p, err := network.ParsePort(string(port))
		if err != nil {
			return nil, nil, err
		}
		bindings[p] = []network.PortBinding{}
		for _, b := range bs {
			var ip netip.Addr
			if b.HostIP != "" {
				if ip, err = netip.ParseAddr(b.HostIP); err != nil {
					return nil, nil, err
				}
			}
			bindings[p] = append(bindings[p], network.PortBinding{HostIP: ip, HostPort: b.HostPort})
		}
	}
	exposed := network.PortSet{}
	for port := range ports {
		p, err := network.ParsePort(string(port))
		if err != nil {
			return nil, nil, err
		}
		exposed[p] = struct{}{}
	}
	for _, e := range expose {
		pr, err := network.ParsePortRange(e)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid range format for --expose: %w", err)
		}
		for p := range pr.All() {
			exposed[p] = struct{}{}
		}
	}
	return exposed, bindings, nil
}

// parseSecurityOpts checks KEY=VALUE (or KEY:VALUE) options and replaces a
// seccomp profile file by its compacted JSON, as the docker CLI does.
func parseSecurityOpts(secOpts []string) ([]string, error) {
	for i, opt := range secOpts {
		k, v, ok := strings.Cut(opt, "=")
		if !ok && k != "no-new-privileges" {
			k, v, ok = strings.Cut(opt, ":")
		}
		if (!ok || v == "") && k != "no-new-privileges" {
			return secOpts, fmt.Errorf("Invalid --security-opt: %q", opt)
		}
		if k != "seccomp" || v == "builtin" || v == "unconfined" {
			continue
		}
		raw, err := os.ReadFile(v)
		if err != nil {
			return secOpts, fmt.Errorf("opening seccomp profile (%s) failed: %w", v, err)
		}
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return secOpts, fmt.Errorf("compacting json for seccomp profile (%s) failed: %w", v, err)
		}
		secOpts[i] = "seccomp=" + b.String()
	}
	return secOpts, nil
}

// parseSystemPaths handles systempaths=unconfined on the client: it is not
// sent; empty masked and read-only path lists are.
func parseSystemPaths(secOpts []string) (filtered, masked, readonly []string) {
	for _, opt := range secOpts {
		if opt == "systempaths=unconfined" {
			masked, readonly = []string{}, []string{}
			continue
		}
		filtered = append(filtered, opt)
	}
	return filtered, masked, readonly
}

func validDeviceMode(mode string) bool {
	if mode == "" {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range mode {
		if !strings.ContainsRune("rwm", c) || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

// validateDevicePath checks --device's [host:]container[:mode] form.
func validateDevicePath(val string) error {
	if strings.Count(val, ":") > 2 {
		return fmt.Errorf("bad format for path: %s", val)
	}
	split := strings.SplitN(val, ":", 3)
	if split[0] == "" {
		return fmt.Errorf("bad format for path: %s", val)
	}
	containerPath := split[0]
	switch len(split) {
	case 2:
		if !validDeviceMode(split[1]) {
			containerPath = split[1]
		}
	case 3:
		containerPath = split[1]
		if !validDeviceMode(split[2]) {
			return fmt.Errorf("bad mode specified: %s", split[2])
		}
	}
	if !path.IsAbs(containerPath) {
		return fmt.Errorf("%s is not an absolute path", containerPath)
	}
	return nil
}

func parseLinuxDevice(device string) (container.DeviceMapping, error) {
	var src, dst string
	permissions := "rwm"
	arr := strings.SplitN(device, ":", 4)
	switch len(arr) {
	case 3:
		permissions = arr[2]
		fallthrough
	case 2:
		if validDeviceMode(arr[1]) {
			permissions = arr[1]
		} else {
			dst = arr[1]
		}
		fallthrough
	case 1:
		src = arr[0]
	default:
		return container.DeviceMapping{}, fmt.Errorf("invalid device specification: %s", device)
	}
	if dst == "" {
		dst = src
	}
	return container.DeviceMapping{PathOnHost: src, PathInContainer: dst, CgroupPermissions: permissions}, nil
}

func validateAttach(val string) (string, error) {
	s := strings.ToLower(val)
	if s == "stdin" || s == "stdout" || s == "stderr" {
		return s, nil
	}
	return val, errors.New("valid streams are STDIN, STDOUT and STDERR")
}

func toAddrs(ips []string) []netip.Addr {
	if len(ips) == 0 {
		return nil
	}
	out := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip); err == nil {
			out = append(out, a)
		}
	}
	return out
}
