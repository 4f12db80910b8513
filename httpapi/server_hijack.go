package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/moby/moby/api/types"
)

type serverKey struct{}

const hijackedKey = "httpapi.hijacked"

func isHijacked(c echo.Context) bool {
	v, _ := c.Get(hijackedKey).(bool)
	return v
}

// Hijack takes the client connection over for a raw stream (attach, exec
// start). With the `Upgrade: tcp` request the docker CLI always sends, it
// answers exactly
//
//	HTTP/1.1 101 UPGRADED
//	Content-Type: application/vnd.docker.raw-stream
//	Connection: Upgrade
//	Upgrade: tcp
//
// plus the headers already set on the response (Server, Api-Version, …),
// as dockerd does. Without an Upgrade header it falls back to dockerd's
// "HTTP/1.1 200 OK" + Content-Type and then the same raw bytes; the CLI
// never takes that path, but old clients did.
//
// The returned reader must be used for reading: it holds any bytes the
// client sent right after its request (stdin). The connection has no
// deadlines, supports CloseWrite when the transport does (so the handler
// can signal end of output while still reading stdin), and is closed by
// Server.Shutdown if still open when the shutdown deadline passes. The
// handler must Close it and then return nil.
func Hijack(c echo.Context) (net.Conn, *bufio.Reader, error) {
	req := c.Request()
	_, upgrade := req.Header["Upgrade"]
	w := c.Response()

	hc := &hijackedConn{}
	if s, ok := req.Context().Value(serverKey{}).(*Server); ok {
		if err := s.trackHijack(hc); err != nil {
			return nil, nil, fmt.Errorf("hijack connection: %w", err)
		}
		hc.srv = s
	}
	// Whatever of a sized body (exec start's JSON) the handler left unread,
	// such as the encoder's trailing newline, must not reach the stream as
	// the first stdin bytes.
	if req.ContentLength > 0 && req.Body != nil {
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			hc.untrack()
			return nil, nil, fmt.Errorf("read request body before hijack: %w", err)
		}
	}
	conn, brw, err := http.NewResponseController(w.Writer).Hijack()
	if err != nil {
		hc.untrack()
		return nil, nil, fmt.Errorf("hijack connection: %w", err)
	}
	hc.setConn(conn)
	c.Set(hijackedKey, true)
	w.Status = http.StatusSwitchingProtocols
	_ = conn.SetDeadline(time.Time{})

	var b strings.Builder
	if upgrade {
		fmt.Fprintf(&b, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n", types.MediaTypeRawStream)
	} else {
		fmt.Fprintf(&b, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n", types.MediaTypeRawStream)
	}
	// Headers set before the hijack would otherwise be lost.
	skip := map[string]bool{"Content-Type": true, "Connection": true, "Upgrade": true, "Content-Length": true, "Transfer-Encoding": true}
	if err := w.Header().WriteSubset(&b, skip); err != nil {
		hc.Close()
		return nil, nil, fmt.Errorf("write hijack headers: %w", err)
	}
	b.WriteString("\r\n")
	// The buffered writer may hold nothing (nothing was written through
	// echo), but flush it in case a middleware did.
	if err := brw.Writer.Flush(); err != nil {
		hc.Close()
		return nil, nil, fmt.Errorf("flush before hijack answer: %w", err)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		hc.Close()
		return nil, nil, fmt.Errorf("write hijack answer: %w", err)
	}
	return hc, brw.Reader, nil
}

// hijackedConn is a hijacked connection the server tracks until it is
// closed, so Shutdown can wait for it and close it when out of time.
type hijackedConn struct {
	net.Conn
	srv *Server

	mu     sync.Mutex
	closed bool
	err    error
}

func (hc *hijackedConn) setConn(c net.Conn) {
	hc.mu.Lock()
	hc.Conn = c
	closed := hc.closed
	hc.mu.Unlock()
	if closed {
		// Shutdown closed it while the hijack was under way.
		_ = c.Close()
	}
}

func (hc *hijackedConn) untrack() {
	if hc.srv != nil {
		hc.srv.untrackHijack(hc)
	}
}

func (hc *hijackedConn) Close() error {
	hc.mu.Lock()
	if hc.closed {
		hc.mu.Unlock()
		return hc.err
	}
	hc.closed = true
	if hc.Conn != nil {
		hc.err = hc.Conn.Close()
	}
	hc.mu.Unlock()
	hc.untrack()
	return hc.err
}

// CloseWrite half-closes the connection (FIN to the client) when the
// transport supports it; reading continues.
func (hc *hijackedConn) CloseWrite() error {
	if cw, ok := hc.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("half-close not supported on %T", hc.Conn)
}

// CloseRead shuts the read side when the transport supports it.
func (hc *hijackedConn) CloseRead() error {
	if cr, ok := hc.Conn.(interface{ CloseRead() error }); ok {
		return cr.CloseRead()
	}
	return fmt.Errorf("read-close not supported on %T", hc.Conn)
}
