package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// newRootCommand builds the whole command tree for one invocation. Nothing
// is registered globally: every run gets fresh commands bound to a.
func newRootCommand(a *app) *cobra.Command {
	version, commit, _ := clientVersionInfo()
	root := &cobra.Command{
		Use:              "berth [OPTIONS] COMMAND [ARG...]",
		Short:            "A self-sufficient runtime for containers",
		SilenceUsage:     true,
		SilenceErrors:    true,
		TraverseChildren: true,
		Args:             cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return showHelp(cmd, a.err)
			}
			return fmt.Errorf("berth: unknown command: berth %s\n\nRun 'berth --help' for more information", args[0])
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Name() == "help" && cmd.Parent() == cmd.Root() {
				// Help needs no daemon, even a misconfigured one.
				return nil
			}
			return a.initialize()
		},
		Version:               fmt.Sprintf("%s, build %s", version, commit),
		DisableFlagsInUseLine: true,
		CompletionOptions:     cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	a.flags = root.Flags()
	// Global flags are the root's own, not persistent: `berth history -H`
	// is --human, as in docker. TraverseChildren parses them before the
	// command name.
	a.opts.installFlags(root.Flags(), a.getenv)
	root.Flags().BoolP("version", "v", false, "Print version information and quit")
	root.PersistentFlags().BoolP("help", "h", false, "Print usage")
	_ = root.PersistentFlags().MarkShorthandDeprecated("help", "use --help")
	root.PersistentFlags().Lookup("help").Hidden = true
	root.SetVersionTemplate("berth version {{.Version}}\n")
	root.SetFlagErrorFunc(flagErrorFunc)
	root.SetHelpFunc(func(cmd *cobra.Command, _ []string) { _ = writeUsage(cmd.OutOrStdout(), cmd) })
	root.SetUsageFunc(func(cmd *cobra.Command) error { return writeUsage(cmd.OutOrStderr(), cmd) })
	root.SetIn(a.in)
	root.SetOut(a.out)
	root.SetErr(a.err)

	addCommands(root, a)
	return root
}

// addCommands lists berth's top-level commands. A new command lives in its
// own cli/cmd_<name>.go and is added here; an image or system verb is
// added to the group in cmd_image.go or cmd_system.go (and, when docker
// has a top-level shortcut for it, here as well).
func addCommands(root *cobra.Command, a *app) {
	root.AddCommand(
		// management commands
		newContainerCommand(a),
		newImageCommand(a),
		newSystemCommand(a),
		newVolumeCommand(a),
		// shortcuts and top-level verbs
		newCreateCommand(a),
		newEventsCommand(a),
		newHistoryCommand(a),
		newImagesCommand(a),
		newInfoCommand(a),
		newInspectCommand(a),
		newKillCommand(a),
		newLogsCommand(a),
		newPsCommand(a),
		newPullCommand(a),
		newRenameCommand(a),
		newRestartCommand(a),
		newRmCommand(a),
		newRmiCommand(a),
		newRunCommand(a),
		newStartCommand(a),
		newStopCommand(a),
		newTagCommand(a),
		newVersionCommand(a),
		newWaitCommand(a),
	)
	// Verbs that are both top-level and under "berth container", each
	// group in its own file.
	root.AddCommand(execCommands(a)...)
	root.AddCommand(containerOpsCommands(a)...)
	root.AddCommand(archiveCommands(a)...)
}

// newGroupCommand is a management command ("berth image", "berth system"):
// without a subcommand it prints its help on stderr, with an unknown one
// it fails like docker.
func newGroupCommand(a *app, use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return showHelp(cmd, a.err)
		},
		Annotations: map[string]string{annotationManagement: "true"},
	}
	cmd.AddCommand(subs...)
	return cmd
}

const (
	// annotationAliases is the "Aliases:" line of the help, as docker
	// writes it ("docker image ls, docker image list, docker images").
	annotationAliases = "aliases"
	// annotationManagement marks a command group for the root help.
	annotationManagement = "management"
)

func showHelp(cmd *cobra.Command, w io.Writer) error {
	return writeUsage(w, cmd)
}

// flagErrorFunc turns a flag parsing error into docker's message and exit
// status 125.
func flagErrorFunc(cmd *cobra.Command, err error) error {
	if err == nil {
		return nil
	}
	return statusError{
		status: fmt.Sprintf("%s\n\nUsage:  %s\n\nRun '%s --help' for more information", err, cmd.UseLine(), cmd.CommandPath()),
		code:   125,
	}
}

// Positional argument checks with the docker CLI's messages (exit 1).

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return fmt.Errorf("%s: unknown command: %s %s\n\nUsage:  %s\n\nRun '%s --help' for more information",
			cmd.Root().Name(), cmd.CommandPath(), args[0], cmd.UseLine(), cmd.CommandPath())
	}
	return fmt.Errorf("%s: '%s' accepts no arguments\n\nUsage:  %s\n\nRun '%s --help' for more information",
		cmd.Root().Name(), cmd.CommandPath(), cmd.UseLine(), cmd.CommandPath())
}

func requiresMinArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= n {
			return nil
		}
		return fmt.Errorf("%s: '%s' requires at least %d %s\n\nUsage:  %s\n\nSee '%s --help' for more information",
			cmd.Root().Name(), cmd.CommandPath(), n, pluralize("argument", n), cmd.UseLine(), cmd.CommandPath())
	}
}

func requiresMaxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) <= n {
			return nil
		}
		return fmt.Errorf("%s: '%s' requires at most %d %s\n\nUsage:  %s\n\nRun '%s --help' for more information",
			cmd.Root().Name(), cmd.CommandPath(), n, pluralize("argument", n), cmd.UseLine(), cmd.CommandPath())
	}
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		return fmt.Errorf("%s: '%s' requires %d %s\n\nUsage:  %s\n\nRun '%s --help' for more information",
			cmd.Root().Name(), cmd.CommandPath(), n, pluralize("argument", n), cmd.UseLine(), cmd.CommandPath())
	}
}

func pluralize(word string, n int) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// filterOpt is --filter/-f: repeatable name=value pairs collected into the
// Engine API's filters map. Names are lower-cased and both sides trimmed,
// as the docker CLI does.
type filterOpt struct{ f client.Filters }

func newFilterOpt() *filterOpt { return &filterOpt{f: make(client.Filters)} }

func (o *filterOpt) String() string {
	if len(o.f) == 0 {
		return ""
	}
	b, err := json.Marshal(o.f)
	if err != nil {
		return "invalid filters"
	}
	return string(b)
}

func (o *filterOpt) Set(value string) error {
	if value == "" {
		return nil
	}
	name, val, ok := strings.Cut(value, "=")
	if !ok {
		return errors.New("bad format of filter (expected name=value)")
	}
	o.f.Add(strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(val))
	return nil
}

func (*filterOpt) Type() string { return "filter" }

func (o *filterOpt) value() client.Filters { return o.f }

// writeUsage renders a command's help in the docker CLI's layout.
func writeUsage(w io.Writer, cmd *cobra.Command) error {
	var b strings.Builder
	b.WriteString("Usage:")
	if cmd.HasSubCommands() {
		b.WriteString("  " + cmd.CommandPath())
		if cmd.HasAvailableFlags() {
			b.WriteString(" [OPTIONS]")
		}
		b.WriteString(" COMMAND")
	} else {
		b.WriteString("  " + cmd.UseLine())
	}
	b.WriteString("\n\n")
	if cmd.Long != "" {
		b.WriteString(strings.TrimSpace(cmd.Long))
	} else {
		b.WriteString(strings.TrimSpace(cmd.Short))
	}
	if aliases := cmd.Annotations[annotationAliases]; aliases != "" {
		b.WriteString("\n\nAliases:\n  " + aliases)
	} else if len(cmd.Aliases) > 0 {
		names := append([]string{cmd.Name()}, cmd.Aliases...)
		b.WriteString("\n\nAliases:\n  " + strings.Join(names, ", "))
	}
	if cmd.HasParent() && cmd.HasAvailableFlags() {
		b.WriteString("\n\nOptions:\n" + strings.TrimRight(cmd.Flags().FlagUsagesWrapped(79), " \n"))
	}
	var mgmt, ops []*cobra.Command
	for _, sub := range cmd.Commands() {
		if !sub.IsAvailableCommand() || sub.Name() == "help" {
			continue
		}
		if sub.Annotations[annotationManagement] != "" {
			mgmt = append(mgmt, sub)
		} else {
			ops = append(ops, sub)
		}
	}
	writeList := func(title string, cmds []*cobra.Command) {
		if len(cmds) == 0 {
			return
		}
		sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name() < cmds[j].Name() })
		pad := 0
		for _, c := range cmds {
			pad = max(pad, len(c.Name()))
		}
		pad = max(pad, 11)
		b.WriteString("\n\n" + title + ":")
		for _, c := range cmds {
			fmt.Fprintf(&b, "\n  %-*s%s", pad+1, c.Name(), c.Short)
		}
	}
	writeList("Management Commands", mgmt)
	writeList("Commands", ops)
	if !cmd.HasParent() && cmd.HasAvailableFlags() {
		b.WriteString("\n\nGlobal Options:\n" + strings.TrimRight(cmd.Flags().FlagUsagesWrapped(79), " \n"))
	}
	if cmd.HasSubCommands() {
		fmt.Fprintf(&b, "\n\nRun '%s COMMAND --help' for more information on a command.", cmd.CommandPath())
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}
