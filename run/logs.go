package run

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/containerd/errdefs"
)

// LogsOptions are the query of GET /containers/{id}/logs.
type LogsOptions struct {
	Stdout, Stderr bool
	Follow         bool
	// Tail is how many of the last messages to send; negative: all.
	Tail         int
	Since, Until time.Time
	Timestamps   bool
}

// Logs returns the container's json-file log as stdcopy frames (raw bytes
// for a TTY container). With Follow it continues with new messages until
// the container stops (and its last messages are sent), Until passes, or
// ctx ends. Close the reader to stop early.
func (m *Manager) Logs(ctx context.Context, ref string, opts LogsOptions) (io.ReadCloser, error) {
	c, err := m.lookup(ref)
	if err != nil {
		return nil, err
	}
	rec := c.view()
	if rec.Log.Driver != "json-file" || rec.LogPath == "" {
		return nil, errdefs.ErrNotImplemented.WithMessage("configured logging driver does not support reading")
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer cancel()
		pw.CloseWithError(m.streamLogs(ctx, c, rec, opts, pw))
	}()
	return &logReader{PipeReader: pr, cancel: cancel}, nil
}

type logReader struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (r *logReader) Close() error {
	r.cancel()
	return r.PipeReader.Close()
}

// logWriter formats messages for the client.
type logWriter struct {
	w          io.Writer
	raw        bool
	timestamps bool
	buf        []byte
}

func (lw *logWriter) write(e logEntry) error {
	stream := byte(1)
	if e.Stream == "stderr" {
		stream = 2
	}
	lw.buf = lw.buf[:0]
	if !lw.raw {
		lw.buf = append(lw.buf, stream, 0, 0, 0, 0, 0, 0, 0)
	}
	if lw.timestamps {
		lw.buf = e.Time.UTC().AppendFormat(lw.buf, "2006-01-02T15:04:05.000000000Z07:00")
		lw.buf = append(lw.buf, ' ')
	}
	lw.buf = append(lw.buf, e.Log...)
	if !lw.raw {
		binary.BigEndian.PutUint32(lw.buf[4:8], uint32(len(lw.buf)-8))
	}
	_, err := lw.w.Write(lw.buf)
	return err
}

func (m *Manager) streamLogs(ctx context.Context, c *ctr, rec *record, opts LogsOptions, w io.Writer) error {
	lw := &logWriter{w: w, raw: rec.Config.Tty, timestamps: opts.Timestamps}
	want := func(e logEntry) bool {
		if (e.Stream == "stdout" && !opts.Stdout) || (e.Stream == "stderr" && !opts.Stderr) {
			return false
		}
		if !opts.Since.IsZero() && e.Time.Before(opts.Since) {
			return false
		}
		return true
	}
	pastUntil := func(e logEntry) bool { return !opts.Until.IsZero() && e.Time.After(opts.Until) }

	// Open the live file first: whatever rotates after this point is
	// still read through this handle.
	live, err := os.Open(rec.LogPath)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if live != nil {
		defer func() { live.Close() }()
	}
	var files []string
	for i := rec.Log.MaxFile - 1; i >= 1; i-- {
		files = append(files, rec.LogPath+"."+strconv.Itoa(i))
	}

	// The backlog: rotated files oldest first, then the live file.
	var ring []logEntry
	tail := opts.Tail
	done := false
	var werr error
	emit := func(e logEntry) bool {
		if pastUntil(e) {
			done = true
			return false
		}
		if !want(e) {
			return true
		}
		if tail < 0 {
			if werr = lw.write(e); werr != nil {
				return false
			}
			return true
		}
		if tail == 0 {
			return true
		}
		ring = append(ring, e)
		if len(ring) > tail {
			ring = ring[1:]
		}
		return true
	}
	for _, f := range files {
		fh, ferr := os.Open(f)
		if ferr != nil {
			continue
		}
		_, stop, rerr := readLogEntries(bufio.NewReader(fh), emit)
		fh.Close()
		if werr != nil {
			return werr
		}
		if rerr != nil {
			return rerr
		}
		if stop {
			break
		}
	}
	var off int64
	if live != nil && !done {
		n, _, rerr := readLogEntries(bufio.NewReader(live), emit)
		if werr != nil {
			return werr
		}
		if rerr != nil {
			return rerr
		}
		off = n
	}
	for _, e := range ring {
		if err := lw.write(e); err != nil {
			return err
		}
	}
	if !opts.Follow || done {
		return nil
	}

	// Follow: poll the live file for growth and rotation until the
	// container is no longer running and everything it wrote was sent.
	tail = -1
	exited := c.exitChan()
	// Already stopped: one more read catches what it wrote after the
	// backlog was read.
	finalPass := !c.view().State.running()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if live == nil {
			live, _ = os.Open(rec.LogPath)
		}
		if live != nil {
			if _, err := live.Seek(off, io.SeekStart); err != nil {
				return err
			}
			n, _, rerr := readLogEntries(bufio.NewReader(live), emit)
			if werr != nil {
				return werr
			}
			if rerr != nil {
				return rerr
			}
			off += n
			if done {
				return nil
			}
			// Rotated away: the handle has been read to its end, move on
			// to the new live file.
			if st, err := os.Stat(rec.LogPath); err == nil {
				if cur, err := live.Stat(); err == nil && !os.SameFile(st, cur) {
					live.Close()
					live, off = nil, 0
					continue
				}
			}
		}
		if finalPass {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-exited:
			// The shim closes the log before it reports the exit: one
			// more read sends the last messages.
			finalPass = true
		case <-tick.C:
			if !opts.Until.IsZero() && time.Now().After(opts.Until) {
				return nil
			}
		}
	}
}
