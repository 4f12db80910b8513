package shim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"time"
)

// maxLogLine is where a line without a newline is cut into partial
// messages, as Docker's json-file driver does.
const maxLogLine = 16 << 10

// jsonLogWriter writes Docker's json-file format: one JSON object per
// message, {"log":"…\n","stream":"stdout","time":"…"}, rotating the file
// at maxSize into at most maxFile files (<path>.1 is the newest rotated).
type jsonLogWriter struct {
	mu      sync.Mutex
	path    string
	f       *os.File
	size    int64
	maxSize int64 // 0: unlimited
	maxFile int
	buf     bytes.Buffer
}

func openJSONLog(path string, maxSize int64, maxFile int) (*jsonLogWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open log: %w", err)
	}
	if maxFile < 1 {
		maxFile = 1
	}
	return &jsonLogWriter{path: path, f: f, size: st.Size(), maxSize: maxSize, maxFile: maxFile}, nil
}

func (w *jsonLogWriter) write(stream string, msg []byte, t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return fs.ErrClosed
	}
	if w.maxSize > 0 && w.size >= w.maxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	w.buf.Reset()
	w.buf.WriteString(`{"log":`)
	enc, _ := json.Marshal(string(msg))
	w.buf.Write(enc)
	w.buf.WriteString(`,"stream":"`)
	w.buf.WriteString(stream)
	w.buf.WriteString(`","time":"`)
	w.buf.WriteString(t.UTC().Format(time.RFC3339Nano))
	w.buf.WriteString("\"}\n")
	n, err := w.f.Write(w.buf.Bytes())
	w.size += int64(n)
	return err
}

// rotate moves <path>.i to <path>.i+1 (dropping the oldest) and the live
// file to <path>.1, then starts a new live file. Readers that hold the old
// file open keep reading it to its end.
func (w *jsonLogWriter) rotate() error {
	w.f.Close()
	w.f = nil
	if w.maxFile > 1 {
		os.Remove(w.path + "." + strconv.Itoa(w.maxFile-1))
		for i := w.maxFile - 1; i > 1; i-- {
			err := os.Rename(w.path+"."+strconv.Itoa(i-1), w.path+"."+strconv.Itoa(i))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("rotate log: %w", err)
			}
		}
		if err := os.Rename(w.path, w.path+".1"); err != nil {
			return fmt.Errorf("rotate log: %w", err)
		}
	} else {
		os.Remove(w.path)
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	w.f = f
	w.size = 0
	return nil
}

func (w *jsonLogWriter) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// lineSplitter cuts a stream into messages at newlines (kept in the
// message) and at maxLogLine.
type lineSplitter struct {
	pending []byte
	emit    func(msg []byte)
}

func (s *lineSplitter) write(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := maxLogLine - len(s.pending)
			if len(p) < room {
				s.pending = append(s.pending, p...)
				return
			}
			s.pending = append(s.pending, p[:room]...)
			p = p[room:]
			s.flush()
			continue
		}
		s.pending = append(s.pending, p[:i+1]...)
		p = p[i+1:]
		s.flush()
	}
}

func (s *lineSplitter) flush() {
	if len(s.pending) > 0 {
		s.emit(s.pending)
		s.pending = s.pending[:0]
	}
}
