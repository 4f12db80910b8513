package cli

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/docker/cli/opts"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"
	"github.com/spf13/cobra"
)

// newVolumeCommand is the `berth volume` group.
func newVolumeCommand(a *app) *cobra.Command {
	return newGroupCommand(a, "volume COMMAND", "Manage volumes",
		newVolumeCreateCommand(a),
		newVolumeInspectCommand(a),
		newVolumeListCommand(a),
		newVolumeRemoveCommand(a),
		newVolumePruneCommand(a),
	)
}

// newVolumeCreateCommand is `berth volume create`.
func newVolumeCreateCommand(a *app) *cobra.Command {
	var name, driver string
	driverOpts := opts.NewMapOpts(nil, nil)
	labels := opts.NewListOpts(opts.ValidateLabel)
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  requiresMaxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" {
					return errors.New("conflicting options: cannot specify a volume-name through both --name and as a positional arg")
				}
				name = args[0]
			}
			res, err := a.client().VolumeCreate(cmd.Context(), client.VolumeCreateOptions{
				Name:       name,
				Driver:     driver,
				DriverOpts: driverOpts.GetAll(),
				Labels:     opts.ConvertKVStringsToMap(labels.GetSlice()),
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(a.out, res.Volume.Name)
			return nil
		},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	fs.StringVar(&name, "name", "", "Specify volume name")
	fs.Lookup("name").Hidden = true
	fs.VarP(driverOpts, "opt", "o", "Set driver specific options")
	fs.Var(&labels, "label", "Set metadata for a volume")
	return cmd
}

// newVolumeInspectCommand is `berth volume inspect`.
func newVolumeInspectCommand(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return writeInspect(a.out, args, format, func(ref string) (any, []byte, error) {
				res, err := a.client().VolumeInspect(ctx, ref, client.VolumeInspectOptions{})
				return res.Volume, res.Raw, err
			})
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", inspectFormatHelp)
	return cmd
}

// newVolumeListCommand is `berth volume ls`.
func newVolumeListCommand(a *app) *cobra.Command {
	var quiet bool
	var format string
	filter := newFilterOpt()
	cmd := &cobra.Command{
		Use:         "ls [OPTIONS]",
		Aliases:     []string{"list"},
		Annotations: map[string]string{annotationAliases: "berth volume ls, berth volume list"},
		Short:       "List volumes",
		Args:        noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := a.client().VolumeList(cmd.Context(), client.VolumeListOptions{Filters: filter.value()})
			if err != nil {
				return err
			}
			if format == "" {
				format = tableFormatKey
			}
			vols := slices.Clone(res.Items)
			slices.SortFunc(vols, func(x, y volume.Volume) int {
				switch {
				case naturalLess(x.Name, y.Name):
					return -1
				case naturalLess(y.Name, x.Name):
					return 1
				}
				return 0
			})
			return writeVolumes(a.out, volumeListFormat(format, quiet), vols)
		},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	fs.StringVar(&format, "format", "", formatHelp)
	fs.VarP(filter, "filter", "f", `Provide filter values (e.g. "dangling=true")`)
	fs.Bool("cluster", false, "Display only cluster volumes, and use cluster volume list formatting")
	return cmd
}

// newVolumeRemoveCommand is `berth volume rm`.
func newVolumeRemoveCommand(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:         "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases:     []string{"remove"},
		Annotations: map[string]string{annotationAliases: "berth volume rm, berth volume remove"},
		Short:       "Remove one or more volumes",
		Long:        "Remove one or more volumes. You cannot remove a volume that is in use by a container.",
		Args:        requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []error
			for _, name := range args {
				if _, err := a.client().VolumeRemove(cmd.Context(), name, client.VolumeRemoveOptions{Force: force}); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(a.out, name)
			}
			return errors.Join(errs...)
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return cmd
}

const (
	unusedVolumesWarning = `WARNING! This will remove anonymous local volumes not used by at least one container.
Are you sure you want to continue?`
	allVolumesWarning = `WARNING! This will remove all local volumes not used by at least one container.
Are you sure you want to continue?`
)

// newVolumePruneCommand is `berth volume prune`.
func newVolumePruneCommand(a *app) *cobra.Command {
	var all, force bool
	filter := newFilterOpt()
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := checkFlagVersions(ctx, cmd, a); err != nil {
				return err
			}
			if _, err := a.client().Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
				return err
			}
			filters := filter.value().Clone()
			warning := unusedVolumesWarning
			if versions.LessThan(a.client().ClientVersion(), "1.42") {
				// Before API 1.42 a prune removes named volumes too.
				warning = allVolumesWarning
			} else if all {
				if _, ok := filters["all"]; ok {
					return errors.New("conflicting options: cannot specify both --all and --filter all=1")
				}
				filters.Add("all", "true")
				warning = allVolumesWarning
			}
			if !force {
				ok, err := confirm(ctx, a.in, a.out, warning)
				if err != nil {
					return err
				}
				if !ok {
					return errCancelled
				}
			}
			res, err := a.client().VolumePrune(ctx, client.VolumePruneOptions{Filters: filters})
			if err != nil {
				return err
			}
			var reclaimed uint64
			if len(res.Report.VolumesDeleted) > 0 {
				var sb strings.Builder
				sb.WriteString("Deleted Volumes:\n")
				for _, name := range res.Report.VolumesDeleted {
					sb.WriteString(name + "\n")
				}
				fmt.Fprintln(a.out, sb.String())
				reclaimed = res.Report.SpaceReclaimed
			}
			fmt.Fprintln(a.out, "Total reclaimed space:", units.HumanSize(float64(reclaimed)))
			return nil
		},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	_ = fs.SetAnnotation("all", annotationMinAPI, []string{"1.42"})
	fs.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	fs.Var(filter, "filter", `Provide filter values (e.g. "label=<label>")`)
	return cmd
}

const (
	defaultVolumeQuietFormat = "{{.Name}}"
	defaultVolumeTableFormat = "table {{.Driver}}\t{{.Name}}"
)

// volumeListHeader names the columns of `volume ls`.
var volumeListHeader = headerContext{
	"ID":           "ID",
	"Name":         "VOLUME NAME",
	"Group":        "GROUP",
	"Driver":       "DRIVER",
	"Scope":        "SCOPE",
	"Availability": "AVAILABILITY",
	"Mountpoint":   "MOUNTPOINT",
	"Labels":       "LABELS",
	"Links":        "LINKS",
	"Size":         sizeHeader,
	"Status":       "STATUS",
}

func volumeListFormat(source string, quiet bool) outputFormat {
	switch source {
	case tableFormatKey:
		if quiet {
			return defaultVolumeQuietFormat
		}
		return defaultVolumeTableFormat
	case rawFormatKey:
		if quiet {
			return `name: {{.Name}}`
		}
		return `name: {{.Name}}\ndriver: {{.Driver}}\n`
	}
	return outputFormat(source)
}

// volumeListRow is a volume of `volume ls`: the listing row plus the
// cluster-volume placeholders, "N/A" for local volumes.
type volumeListRow struct{ *volumeRow }

func (r *volumeListRow) MarshalJSON() ([]byte, error) { return marshalMethods(r) }

func (r *volumeListRow) Group() string {
	if r.v.ClusterVolume == nil {
		return "N/A"
	}
	return r.v.ClusterVolume.Spec.Group
}

func (r *volumeListRow) Availability() string {
	if r.v.ClusterVolume == nil {
		return "N/A"
	}
	return string(r.v.ClusterVolume.Spec.Availability)
}

func (r *volumeListRow) Status() string {
	cv := r.v.ClusterVolume
	switch {
	case cv == nil:
		return "N/A"
	case cv.Info == nil || cv.Info.VolumeID == "":
		return "pending creation"
	case len(cv.PublishStatus) == 0:
		return "created"
	case len(cv.PublishStatus) == 1:
		return "in use (1 node)"
	}
	return fmt.Sprintf("in use (%d nodes)", len(cv.PublishStatus))
}

func writeVolumes(out io.Writer, format outputFormat, vols []volume.Volume) error {
	tw, err := newWideTableWriter(out, format)
	if err != nil {
		return err
	}
	for _, v := range vols {
		if err := tw.row(&volumeListRow{&volumeRow{v: v}}); err != nil {
			return err
		}
	}
	return tw.flush(volumeListHeader)
}

// naturalLess orders strings with their digit runs compared as numbers
// ("vol2" before "vol10"), as docker sorts volume names.
func naturalLess(s1, s2 string) bool {
	i, j := 0, 0
	for i < len(s1) && j < len(s2) {
		c1, c2 := s1[i], s2[j]
		d1, d2 := isDigit(c1), isDigit(c2)
		switch {
		case d1 != d2:
			return d1
		case !d1:
			if c1 != c2 {
				return c1 < c2
			}
			i++
			j++
		default:
			// Compare the digit runs: without leading zeros, the longer
			// is larger; then lexically; then fewer zeros first.
			z1, z2 := i, j
			for z1 < len(s1) && s1[z1] == '0' {
				z1++
			}
			for z2 < len(s2) && s2[z2] == '0' {
				z2++
			}
			e1, e2 := z1, z2
			for e1 < len(s1) && isDigit(s1[e1]) {
				e1++
			}
			for e2 < len(s2) && isDigit(s2[e2]) {
				e2++
			}
			n1, n2 := s1[z1:e1], s2[z2:e2]
			if len(n1) != len(n2) {
				return len(n1) < len(n2)
			}
			if n1 != n2 {
				return n1 < n2
			}
			if z1-i != z2-j {
				return z1-i < z2-j
			}
			i, j = e1, e2
		}
	}
	return len(s1)-i < len(s2)-j
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }
