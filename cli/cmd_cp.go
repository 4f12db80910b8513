package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	units "github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// archiveCommands are this file's verbs, added both at the top level and
// under "berth container".
func archiveCommands(a *app) []*cobra.Command {
	return []*cobra.Command{newCopyCommand(a), newDiffCommand(a)}
}

type copyOptions struct {
	followLink bool
	copyUIDGID bool
	quiet      bool
}

// newCopyCommand is `berth cp` / `berth container cp`.
func newCopyCommand(a *app) *cobra.Command {
	var opts copyOptions
	cmd := &cobra.Command{
		Use: `cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-
	berth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH`,
		Short: "Copy files/folders between a container and the local filesystem",
		Long: `Copy files/folders between a container and the local filesystem

Use '-' as the source to read a tar archive from stdin
and extract it to a directory destination in a container.
Use '-' as the destination to stream a tar archive of a
container source to stdout.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "" {
				return errors.New("source can not be empty")
			}
			if args[1] == "" {
				return errors.New("destination can not be empty")
			}
			if !cmd.Flag("quiet").Changed {
				// Without a terminal the summary is left out, as docker does.
				opts.quiet = !isTerminal(a.out)
			}
			return a.runCopy(cmd.Context(), opts, args[0], args[1])
		},
		Annotations:           map[string]string{annotationAliases: "berth container cp, berth cp"},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.BoolVarP(&opts.followLink, "follow-link", "L", false, "Always follow symlinks in SRC_PATH")
	fs.BoolVarP(&opts.copyUIDGID, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	fs.BoolVarP(&opts.quiet, "quiet", "q", false, "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached")
	return cmd
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// splitCpArg splits CONTAINER:PATH; a local path with a colon must start
// with "/" or "." to be taken as local, as with docker (and scp).
func splitCpArg(arg string) (ctr, p string) {
	if filepath.IsAbs(arg) {
		return "", arg
	}
	ctr, p, ok := strings.Cut(arg, ":")
	if !ok || strings.HasPrefix(ctr, ".") {
		return "", arg
	}
	return ctr, p
}

func (a *app) runCopy(ctx context.Context, opts copyOptions, src, dst string) error {
	srcCtr, srcPath := splitCpArg(src)
	dstCtr, dstPath := splitCpArg(dst)
	switch {
	case srcCtr != "" && dstCtr != "":
		return errors.New("copying between containers is not supported")
	case srcCtr != "":
		return a.copyFromContainer(ctx, opts, srcCtr, srcPath, dstPath)
	case dstCtr != "":
		return a.copyToContainer(ctx, opts, dstCtr, srcPath, dstPath)
	default:
		return errors.New("must specify at least one container source")
	}
}

// countingReader counts what passes through it.
type countingReader struct {
	io.ReadCloser
	n *int64
}

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	atomic.AddInt64(r.n, int64(n))
	return n, err
}

func humanSize(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }

// copySummary is the docker CLI's (28.x) closing line: the size of the
// archive that went over the wire.
func copySummary(transferred int64, dest string) string {
	return fmt.Sprintf("Successfully copied %s to %s\n", humanSize(transferred), dest)
}

// validateOutputPath is docker's check of a local destination.
func validateOutputPath(p string) error {
	dir := filepath.Dir(filepath.Clean(p))
	if dir != "" && dir != "." {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			return fmt.Errorf("invalid output path: directory %q does not exist", dir)
		}
	}
	if fi, err := os.Stat(p); !os.IsNotExist(err) {
		if err != nil {
			return err
		}
		if fi.Mode().IsDir() || fi.Mode().IsRegular() {
			return nil
		}
		if err := validateOutputFileMode(fi.Mode()); err != nil {
			return fmt.Errorf("invalid output path: %q must be a directory or a regular file: %w", p, err)
		}
	}
	return nil
}

func validateOutputFileMode(m os.FileMode) error {
	switch {
	case m&os.ModeDevice != 0:
		return errors.New("got a device")
	case m&os.ModeIrregular != 0:
		return errors.New("got an irregular file")
	}
	return nil
}

func (a *app) copyFromContainer(ctx context.Context, opts copyOptions, ctr, srcPath, dstPath string) error {
	if dstPath != "-" {
		p, err := resolveLocalPath(dstPath)
		if err != nil {
			return err
		}
		dstPath = p
	}
	if err := validateOutputPath(dstPath); err != nil {
		return err
	}
	api := a.client()
	var rebase string
	if opts.followLink {
		st, err := api.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: srcPath})
		if err == nil && st.Stat.Mode&os.ModeSymlink != 0 {
			target := linkTargetPath(srcPath, st.Stat.LinkTarget)
			target, rebase = getRebaseName(srcPath, target)
			srcPath = target
		}
	}
	res, err := api.CopyFromContainer(ctx, ctr, client.CopyFromContainerOptions{SourcePath: srcPath})
	if err != nil {
		return err
	}
	content := res.Content
	defer content.Close()
	if dstPath == "-" {
		_, err := io.Copy(a.out, content)
		return err
	}
	src := copyInfo{Path: srcPath, Exists: true, IsDir: res.Stat.Mode.IsDir(), RebaseName: rebase}
	var copied int64
	content = countingReader{ReadCloser: content, n: &copied}
	var archive io.Reader = content
	if rebase != "" {
		_, srcBase := splitPathDirEntry(src.Path)
		archive = rebaseArchiveEntries(content, srcBase, rebase)
	}
	err = copyTo(archive, src, dstPath)
	if opts.quiet {
		return err
	}
	fmt.Fprint(a.err, copySummary(copied, dstPath))
	return err
}

func (a *app) copyToContainer(ctx context.Context, opts copyOptions, ctr, srcPath, dstPath string) error {
	if srcPath != "-" {
		p, err := resolveLocalPath(srcPath)
		if err != nil {
			return err
		}
		srcPath = p
	}
	api := a.client()
	// What the destination is decides where the archive goes and under
	// which name; a failed stat means "create it in an existing parent".
	dst := copyInfo{Path: dstPath}
	if st, err := api.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: dstPath}); err == nil {
		if st.Stat.Mode&os.ModeSymlink != 0 {
			target := linkTargetPath(dstPath, st.Stat.LinkTarget)
			dst.Path = target
			st, err = api.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: target})
		}
		if err == nil {
			if err := validateOutputFileMode(st.Stat.Mode); err != nil {
				return fmt.Errorf(`destination "%s:%s" must be a directory or a regular file: %w`, ctr, dstPath, err)
			}
			dst.Exists, dst.IsDir = true, st.Stat.Mode.IsDir()
		}
	}

	var (
		content     io.ReadCloser
		resolvedDst string
		copied      int64
	)
	if srcPath == "-" {
		// Like docker 28, what comes from stdin is not counted.
		content = io.NopCloser(a.in)
		resolvedDst = dst.Path
		if !dst.IsDir {
			return fmt.Errorf(`destination "%s:%s" must be a directory`, ctr, dstPath)
		}
	} else {
		src, err := copyInfoSourcePath(srcPath, opts.followLink)
		if err != nil {
			return err
		}
		srcArchive, err := tarResource(src)
		if err != nil {
			return err
		}
		defer srcArchive.Close()
		dir, prepared, err := prepareArchiveCopy(srcArchive, src, dst)
		if err != nil {
			return err
		}
		defer prepared.Close()
		resolvedDst = dir
		content = countingReader{ReadCloser: prepared, n: &copied}
	}
	_, err := api.CopyToContainer(ctx, ctr, client.CopyToContainerOptions{
		DestinationPath: resolvedDst,
		Content:         content,
		CopyUIDGID:      opts.copyUIDGID,
	})
	if opts.quiet {
		return err
	}
	fmt.Fprint(a.err, copySummary(copied, ctr+":"+dst.Path))
	return err
}

// newDiffCommand is `berth diff` / `berth container diff`.
func newDiffCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := a.client().ContainerDiff(cmd.Context(), args[0], client.ContainerDiffOptions{})
			if err != nil {
				return err
			}
			var b strings.Builder
			for _, c := range res.Changes {
				fmt.Fprintf(&b, "%s %s\n", c.Kind, c.Path)
			}
			_, err = io.WriteString(a.out, b.String())
			return err
		},
		Annotations:           map[string]string{annotationAliases: "berth container diff, berth diff"},
		DisableFlagsInUseLine: true,
	}
}
