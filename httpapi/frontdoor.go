package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// frontDoor sits between a listener and net/http. Each plain connection
// starts in a small loop that answers the requests clients send most and
// in bulk (GET and HEAD /_ping, GET /images/json from the response cache)
// straight from their bytes, without net/http's per-request machinery,
// which costs more than the answers do. The first request it does not
// answer hands the connection, with every byte read so far, to net/http
// for good: a docker CLI pings and then creates a container on the same
// connection. TLS connections go to net/http at once.
type frontDoor struct {
	s     *Server
	inner net.Listener
	// handoff carries connections to http.Server through Accept.
	handoff chan net.Conn
	done    chan struct{}
	close   sync.Once
	// acceptErr is the inner listener's error, told by Accept once the
	// connections before it are handed off.
	acceptErr atomic.Pointer[error]
}

// frontDoorBufferSize bounds a request head the loop looks at; a longer
// head goes to net/http.
const frontDoorBufferSize = 4096

func newFrontDoor(s *Server, l net.Listener) *frontDoor {
	f := &frontDoor{s: s, inner: l, handoff: make(chan net.Conn), done: make(chan struct{})}
	go f.acceptLoop()
	return f
}

func (f *frontDoor) acceptLoop() {
	for {
		conn, err := f.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			f.acceptErr.Store(&err)
			f.Close()
			return
		}
		if _, isTLS := conn.(*tls.Conn); isTLS {
			f.give(conn)
			continue
		}
		if !f.s.trackFront(conn) {
			conn.Close()
			continue
		}
		go f.serve(conn)
	}
}

// give hands conn to net/http, or closes it when the server is gone.
func (f *frontDoor) give(conn net.Conn) {
	select {
	case f.handoff <- conn:
	case <-f.done:
		conn.Close()
	}
}

// Accept is net/http's side: the connections the loop gives up.
func (f *frontDoor) Accept() (net.Conn, error) {
	select {
	case c := <-f.handoff:
		return c, nil
	case <-f.done:
		if p := f.acceptErr.Load(); p != nil {
			return nil, *p
		}
		return nil, net.ErrClosed
	}
}

func (f *frontDoor) Close() error {
	var err error
	f.close.Do(func() {
		close(f.done)
		err = f.inner.Close()
	})
	return err
}

func (f *frontDoor) Addr() net.Addr { return f.inner.Addr() }

// serve answers requests on conn until one is not for it.
func (f *frontDoor) serve(conn net.Conn) {
	br := bufio.NewReaderSize(conn, frontDoorBufferSize)
	out := make([]byte, 0, 1024)
	for {
		// net/http's IdleTimeout and ReadHeaderTimeout, in one.
		conn.SetReadDeadline(time.Now().Add(f.s.http.IdleTimeout))
		if _, err := br.Peek(1); err != nil {
			f.s.untrackFront(conn)
			conn.Close()
			return
		}
		head, req, ok := parseSimpleRequest(br)
		var body []byte
		if ok {
			body, ok = f.answer(req)
		}
		if !ok {
			// Not ours: net/http reads this request from the start.
			conn.SetReadDeadline(time.Time{})
			f.s.untrackFront(conn)
			f.give(&bufferedConn{Conn: conn, r: br})
			return
		}
		br.Discard(head)
		f.s.front.served.Add(1)
		out = f.s.front.appendResponse(out[:0], req, body)
		if _, err := conn.Write(out); err != nil {
			f.s.untrackFront(conn)
			conn.Close()
			return
		}
	}
}

// simpleRequest is what the loop needs of a request.
type simpleRequest struct {
	head     bool // HEAD, else GET
	path     string
	rawQuery string
}

// parseSimpleRequest parses the request head buffered in br when it is a
// complete HTTP/1.1 GET or HEAD without a body, upgrade, expectation or
// connection header, and reports its length; anything else is not ok.
func parseSimpleRequest(br *bufio.Reader) (int, simpleRequest, bool) {
	var req simpleRequest
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return 0, req, false
	}
	buf = buf[:end+2]
	line, rest, _ := bytes.Cut(buf, []byte("\r\n"))
	switch {
	case bytes.HasPrefix(line, []byte("GET ")):
		line = line[4:]
	case bytes.HasPrefix(line, []byte("HEAD ")):
		req.head = true
		line = line[5:]
	default:
		return 0, req, false
	}
	target, proto, _ := bytes.Cut(line, []byte(" "))
	if !bytes.Equal(proto, []byte("HTTP/1.1")) || len(target) == 0 || target[0] != '/' || bytes.ContainsAny(target, "%#") {
		return 0, req, false
	}
	path, query, _ := bytes.Cut(target, []byte("?"))
	for len(rest) > 0 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, found := bytes.Cut(h, []byte(":"))
		if !found {
			return 0, req, false
		}
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if string(bytes.TrimSpace(value)) != "0" {
				return 0, req, false
			}
		case asciiEqualFold(name, "Transfer-Encoding"), asciiEqualFold(name, "Connection"),
			asciiEqualFold(name, "Upgrade"), asciiEqualFold(name, "Expect"):
			return 0, req, false
		}
	}
	req.path, req.rawQuery = string(path), string(query)
	return end + 4, req, true
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// answer gives the body of the 200 answer to req when the loop serves it:
// ping, and the image list from the cache (filled through the router on a
// miss).
func (f *frontDoor) answer(req simpleRequest) (body []byte, ok bool) {
	s := f.s
	if s.debugOn(context.Background()) {
		// The access log wants every request: net/http's path has it.
		return nil, false
	}
	if req.path == "/_ping" {
		if req.head {
			// dockerd's HEAD /_ping announces an empty body.
			return nil, true
		}
		return okBody, true
	}
	if req.head || s.backends.Images == nil {
		return nil, false
	}
	if !s.isImageList(req.path) {
		return nil, false
	}
	gen := s.backends.Images.Generation()
	if b, hit := s.imagesJSON.get(gen, req.rawQuery, ""); hit {
		return b, true
	}
	// A miss: the router computes the answer (and caches it) into memory;
	// only a plain 200 is served from here.
	target := req.path
	if req.rawQuery != "" {
		target += "?" + req.rawQuery
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, false
	}
	r := (&http.Request{Method: http.MethodGet, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Host: "api.moby.localhost", RequestURI: target}).WithContext(s.baseCtx)
	w := &memResponse{header: http.Header{}}
	s.http.Handler.ServeHTTP(w, r)
	if w.status != http.StatusOK || w.header.Get("Content-Type") != "application/json" {
		return nil, false
	}
	return w.body.Bytes(), true
}

// memResponse keeps a response in memory.
type memResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *memResponse) Header() http.Header { return w.header }
func (w *memResponse) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *memResponse) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

// frontResponses holds the constant parts of the loop's answers.
type frontResponses struct {
	ping []byte // status line and headers of a ping answer, without length and date
	json []byte // the same for a JSON answer
	date atomic.Pointer[frontDate]
	// served counts the answers the loop gave (for tests).
	served atomic.Int64
}

type frontDate struct {
	sec  int64
	line []byte // "Date: ...\r\n"
}

func newFrontResponses(f *fastPath) *frontResponses {
	r := &frontResponses{ping: headerBlock(f.hdr), json: headerBlock(f.jsonHdr)}
	return r
}

func headerBlock(h http.Header) []byte {
	b := []byte("HTTP/1.1 200 OK\r\n")
	var buf bytes.Buffer
	h.Write(&buf)
	return append(b, buf.Bytes()...)
}

// dateLine is the Date header for now, formatted once a second.
func (r *frontResponses) dateLine() []byte {
	now := time.Now()
	if d := r.date.Load(); d != nil && d.sec == now.Unix() {
		return d.line
	}
	d := &frontDate{sec: now.Unix(), line: []byte("Date: " + now.UTC().Format(http.TimeFormat) + "\r\n")}
	r.date.Store(d)
	return d.line
}

// appendResponse appends a 200 answer to req with body (its length
// announced, its bytes left out for HEAD).
func (r *frontResponses) appendResponse(out []byte, req simpleRequest, body []byte) []byte {
	if req.path == "/_ping" {
		out = append(out, r.ping...)
	} else {
		out = append(out, r.json...)
	}
	out = append(out, "Content-Length: "...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, "\r\n"...)
	out = append(out, r.dateLine()...)
	out = append(out, "\r\n"...)
	if !req.head {
		out = append(out, body...)
	}
	return out
}

// bufferedConn is a connection whose first bytes were read into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite and CloseRead reach the transport's, so a hijacked stream
// can still half-close.
func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

func (c *bufferedConn) CloseRead() error {
	if cr, ok := c.Conn.(interface{ CloseRead() error }); ok {
		return cr.CloseRead()
	}
	return errors.ErrUnsupported
}

// trackFront registers a connection in the loop, so Shutdown can close
// it; false once the server is shutting down.
func (s *Server) trackFront(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.frontClosed {
		return false
	}
	s.frontConns[c] = struct{}{}
	return true
}

func (s *Server) untrackFront(c net.Conn) {
	s.mu.Lock()
	delete(s.frontConns, c)
	s.mu.Unlock()
}

// closeFront closes the connections in the loop: between two requests
// they are idle, as http.Server's idle connections are when it shuts down.
func (s *Server) closeFront() {
	s.mu.Lock()
	s.frontClosed = true
	conns := make([]net.Conn, 0, len(s.frontConns))
	for c := range s.frontConns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}
