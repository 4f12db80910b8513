package shim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The shim's sockets are raw unix sockets in pollable *os.Files rather
// than package net: berthd is built with cgo (for runc), and net would
// link cgo's resolver into the shim, making it a dynamically linked
// program that takes ~5 ms longer to start and 1.5 MB more memory for
// every container it keeps.

// sockConn is one end of a unix stream connection.
type sockConn struct {
	*os.File
}

func newSockConn(fd int, name string) (*sockConn, error) {
	f := os.NewFile(uintptr(fd), name)
	if f == nil {
		unix.Close(fd)
		return nil, errors.New("bad socket")
	}
	return &sockConn{File: f}, nil
}

// CloseWrite shuts the sending side: the peer reads EOF.
func (c *sockConn) CloseWrite() error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Shutdown(int(fd), unix.SHUT_WR) }); err != nil {
		return err
	}
	return os.NewSyscallError("shutdown", serr)
}

// listener accepts unix stream connections.
type listener struct {
	f    *os.File
	rc   syscall.RawConn
	addr string
}

// listenUnix listens at addr, a path or "@name" for an abstract socket.
func listenUnix(addr string) (*listener, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: addr}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen %s: %w", addr, os.NewSyscallError("bind", err))
	}
	if err := unix.Listen(fd, 64); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen %s: %w", addr, os.NewSyscallError("listen", err))
	}
	f := os.NewFile(uintptr(fd), addr)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &listener{f: f, rc: rc, addr: addr}, nil
}

// Accept waits for a connection; after Close it fails with an error that
// is os.ErrClosed.
func (l *listener) Accept() (*sockConn, error) {
	var nfd int
	var aerr error
	err := l.rc.Read(func(fd uintptr) bool {
		nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		return aerr != unix.EAGAIN && aerr != unix.EINTR
	})
	if err != nil {
		return nil, err
	}
	if aerr != nil {
		return nil, os.NewSyscallError("accept", aerr)
	}
	return newSockConn(nfd, l.addr)
}

func (l *listener) Close() error { return l.f.Close() }

// dialUnix connects to addr. A listener whose backlog is full is retried
// until ctx ends.
func dialUnix(ctx context.Context, addr string) (*sockConn, error) {
	for {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, os.NewSyscallError("socket", err)
		}
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: addr})
		if err == nil {
			return newSockConn(fd, addr)
		}
		unix.Close(fd)
		if err != unix.EAGAIN {
			return nil, fmt.Errorf("dial %s: %w", addr, os.NewSyscallError("connect", err))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}
