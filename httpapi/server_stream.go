package httpapi

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"

	"github.com/docker/go-units"
	"github.com/labstack/echo/v4"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/jsonstream"
)

// JSONStream is a streaming 200 answer: chunked application/json, one
// object per line, each flushed as soon as it is written. Safe for
// concurrent use.
type JSONStream struct {
	mu  sync.Mutex
	w   *echo.Response
	rc  *http.ResponseController
	enc *json.Encoder
}

// WriteJSONStream starts a JSON stream: it sends 200 with Content-Type
// application/json and flushes the headers at once, so clients that wait
// for headers before doing anything else (docker run waits on /wait) are
// not held up.
func WriteJSONStream(c echo.Context) (*JSONStream, error) {
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "application/json")
	w.Header().Del(echo.HeaderContentLength)
	w.WriteHeader(http.StatusOK)
	s := &JSONStream{w: w, rc: http.NewResponseController(w)}
	s.enc = json.NewEncoder(w)
	s.enc.SetEscapeHTML(false)
	if err := s.rc.Flush(); err != nil {
		return nil, fmt.Errorf("flush stream headers: %w", err)
	}
	return s, nil
}

// Encode writes v as one line and flushes it.
func (s *JSONStream) Encode(v any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enc.Encode(v); err != nil {
		return err
	}
	return s.rc.Flush()
}

// ProgressMessage is one line of the JSON progress stream of pull, push,
// load, import and build, with the legacy string fields (`progress`,
// `error`) API 1.41 clients still read. Only errorDetail makes the docker
// CLI treat a line as a failure, so an error line carries both.
type ProgressMessage struct {
	Stream         string               `json:"stream,omitempty"`
	Status         string               `json:"status,omitempty"`
	ProgressDetail *jsonstream.Progress `json:"progressDetail,omitempty"`
	Progress       string               `json:"progress,omitempty"`
	ID             string               `json:"id,omitempty"`
	ErrorDetail    *jsonstream.Error    `json:"errorDetail,omitempty"`
	Error          string               `json:"error,omitempty"`
	Aux            *json.RawMessage     `json:"aux,omitempty"`
}

// ProgressWriter writes progress messages to a JSONStream.
type ProgressWriter struct {
	s *JSONStream
}

// NewProgressWriter starts a JSON stream for progress messages.
func NewProgressWriter(c echo.Context) (*ProgressWriter, error) {
	s, err := WriteJSONStream(c)
	if err != nil {
		return nil, err
	}
	return &ProgressWriter{s: s}, nil
}

// Progress returns a writer of progress messages on s.
func (s *JSONStream) Progress() *ProgressWriter { return &ProgressWriter{s: s} }

// Write sends m, completing whichever of errorDetail/error is missing so
// both are always present on an error line.
func (p *ProgressWriter) Write(m ProgressMessage) error {
	switch {
	case m.ErrorDetail != nil && m.Error == "":
		m.Error = m.ErrorDetail.Message
	case m.ErrorDetail == nil && m.Error != "":
		m.ErrorDetail = &jsonstream.Error{Message: m.Error}
	}
	return p.s.Encode(m)
}

// Status sends {"status": status, "id": id}; id may be empty.
func (p *ProgressWriter) Status(id, status string) error {
	return p.Write(ProgressMessage{ID: id, Status: status})
}

// Progress sends a progress line ("Downloading", "Extracting", …) with
// both progressDetail and the rendered bar dockerd puts in `progress`.
// A total of 0 or less means unknown.
func (p *ProgressWriter) Progress(id, action string, current, total int64) error {
	d := &jsonstream.Progress{Current: current, Total: total}
	return p.Write(ProgressMessage{ID: id, Status: action, ProgressDetail: d, Progress: ProgressBar(current, total)})
}

// Stream sends {"stream": text} (build output; include the newline).
func (p *ProgressWriter) Stream(text string) error {
	return p.Write(ProgressMessage{Stream: text})
}

// Aux sends {"aux": v} (build's {"ID"}, push's {"Tag","Digest","Size"}).
func (p *ProgressWriter) Aux(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode aux: %w", err)
	}
	raw := json.RawMessage(b)
	return p.Write(ProgressMessage{Aux: &raw})
}

// Error sends err as an error line. Use ErrorCode when the client needs a
// code (a failed RUN's exit status becomes the CLI's exit status).
func (p *ProgressWriter) Error(err error) error {
	return p.ErrorCode(0, err.Error())
}

// ErrorCode sends {"errorDetail":{"code":code,"message":msg},"error":msg}.
func (p *ProgressWriter) ErrorCode(code int, msg string) error {
	return p.Write(ProgressMessage{ErrorDetail: &jsonstream.Error{Code: code, Message: msg}, Error: msg})
}

// ProgressBar renders progress the way dockerd fills the legacy `progress`
// field (a 50-column bar, then sizes): "[==>    ]  1.2MB/3.4MB".
func ProgressBar(current, total int64) string {
	if current <= 0 && total <= 0 {
		return ""
	}
	if total <= 0 {
		return fmt.Sprintf("%8v", units.HumanSize(float64(current)))
	}
	pct := int(float64(current)/float64(total)*100) / 2
	pct = min(pct, 50)
	bar := fmt.Sprintf("[%s>%s] ", strings.Repeat("=", pct), strings.Repeat(" ", max(50-pct, 0)))
	if current > total {
		return bar + fmt.Sprintf("%8v", units.HumanSize(float64(current)))
	}
	return bar + fmt.Sprintf("%8v/%v", units.HumanSize(float64(current)), units.HumanSize(float64(total)))
}

// StdWriter frames writes for one stream of a multiplexed (non-TTY)
// attach/exec/logs answer: an 8-byte header [stream,0,0,0,len uint32 BE]
// then the payload, which the client splits with stdcopy.StdCopy.
type StdWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream stdcopy.StdType
}

// NewStdWriters returns the stdout, stderr and systemerr writers of one
// multiplexed stream over w. They share a lock so frames written from
// different goroutines never interleave.
func NewStdWriters(w io.Writer) (stdout, stderr, systemerr *StdWriter) {
	mu := &sync.Mutex{}
	return &StdWriter{mu: mu, w: w, stream: stdcopy.Stdout},
		&StdWriter{mu: mu, w: w, stream: stdcopy.Stderr},
		&StdWriter{mu: mu, w: w, stream: stdcopy.Systemerr}
}

// Write sends p as one frame (header and payload in a single write).
func (sw *StdWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if uint64(len(p)) > math.MaxUint32 {
		return 0, errors.New("stdcopy frame too large")
	}
	frame := make([]byte, 8+len(p))
	frame[0] = byte(sw.stream)
	binary.BigEndian.PutUint32(frame[4:8], uint32(len(p)))
	copy(frame[8:], p)
	sw.mu.Lock()
	defer sw.mu.Unlock()
	n, err := sw.w.Write(frame)
	if n < 8 {
		return 0, errOr(err, io.ErrShortWrite)
	}
	n -= 8
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}

func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}
