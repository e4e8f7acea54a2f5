// Package rfbserver serves a shared framebuffer to RFB (VNC) clients such as
// noVNC, TigerVNC's vncviewer or kvmgate's own rfb package.
//
// A Server speaks RFB 3.3, 3.7 and 3.8 with None or VNC authentication. Each
// connection has two goroutines: the one running ServeConn reads the
// client's messages and turns input into calls on an InputSink; a sender
// goroutine owns every write. The sender takes damage from its
// framebuffer.Viewer only when the client has asked for an update, so while
// a client is slow its damage accumulates in the viewer (latest wins) and
// per-client memory stays bounded by the screen size. Pixels are encoded per
// client in Raw, CopyRect, Hextile, ZRLE, Tight (with JPEG at the client's
// quality level) or TightPNG, the first the client lists, and converted to
// whatever true-colour pixel format the client asked for. Areas sent as
// JPEG are sent again losslessly once they have been quiet for a moment.
// Each connection keeps a copy of the picture it sent, so damage is trimmed
// to the rows and columns that really changed (and damage that changed
// nothing sends nothing).
//
// Clients that ask for ContinuousUpdates get updates without requesting
// them once they turn them on; with Fence, the server follows each such
// update with a fence and keeps at most two unanswered, so every client
// gets frames at the pace it processes them. Extended Clipboard carries
// UTF-8 text both ways; other clients get Latin-1 cut text.
//
// An incremental update request is answered with all the damage, whatever
// area it names (clients ask for the whole screen); a non-incremental one
// adds its area. Clients that support ExtendedDesktopSize get their resize
// and screen layout answers; SetDesktopSize is always refused, since the
// size belongs to the backend.
package rfbserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/input"
)

// InputSink receives the input of every connected client. backend.Console
// satisfies it. Its methods are called from the connections' reader
// goroutines, possibly concurrently, and should not block for long.
type InputSink interface {
	Key(ev input.KeyEvent) error
	Pointer(ev input.PointerEvent) error
	Clipboard(text string) error
}

// Resizer is implemented by input sinks that can resize the console
// (session.Viewer does): a client's SetDesktopSize goes to Resize and is
// answered "forwarded"; the new size reaches clients as a server-side
// resize once the console has it. Without it SetDesktopSize is refused.
type Resizer interface {
	Resize(w, h int) error
}

// Defaults for the Server's limits.
const (
	DefaultMaxCutText       = 1 << 20
	DefaultWriteTimeout     = 30 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	// MaxEncodings is the most encodings a client may list in SetEncodings;
	// real clients send a few dozen.
	MaxEncodings = 1024
)

// Server serves FB to RFB clients. Its fields must not change once Serve or
// ServeConn has been called. Any number of clients share the framebuffer; a
// client's request for exclusive access (ClientInit's shared flag clear) is
// logged and ignored.
type Server struct {
	// FB is the picture served. Required.
	FB *framebuffer.Framebuffer
	// Input receives clients' keys, pointer and clipboard; nil makes the
	// server view-only.
	Input InputSink
	// Password enables VNC authentication when set (only its first 8 bytes
	// count, as the protocol defines); when empty clients need none.
	Password string
	// Name is the desktop name sent to clients. When empty, the
	// framebuffer's name is used (and its changes are forwarded to clients
	// that support the DesktopName pseudo-encoding), or "kvmgate".
	Name string
	// Logger receives one line per connection event; nil means slog.Default().
	Logger *slog.Logger

	// MaxCutText bounds the clipboard text a client may send, in bytes;
	// zero means DefaultMaxCutText. A client sending more is disconnected.
	MaxCutText int
	// WriteTimeout bounds each write to a client; zero means
	// DefaultWriteTimeout. A client that stops reading is disconnected.
	WriteTimeout time.Duration
	// HandshakeTimeout bounds the handshake; zero means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) maxCutText() int {
	if s.MaxCutText > 0 {
		return s.MaxCutText
	}
	return DefaultMaxCutText
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout > 0 {
		return s.WriteTimeout
	}
	return DefaultWriteTimeout
}

func (s *Server) handshakeTimeout() time.Duration {
	if s.HandshakeTimeout > 0 {
		return s.HandshakeTimeout
	}
	return DefaultHandshakeTimeout
}

// desktopName returns the name for ServerInit.
func (s *Server) desktopName() string {
	if s.Name != "" {
		return s.Name
	}
	if n := s.FB.Name(); n != "" {
		return n
	}
	return "kvmgate"
}

// Serve accepts connections on ln and serves each on its own goroutines
// until ctx ends. It then closes ln, ends every connection, waits for them
// and returns nil. It returns an error if ln is closed by someone else;
// other accept errors are logged and retried.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.FB == nil {
		return errors.New("rfbserver: Server.FB is nil")
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		ln.Close()
		wg.Wait()
	}()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !errors.Is(err, net.ErrClosed) {
				// Out of file descriptors and the like: wait and retry.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger().Warn("rfbserver: accept failed; retrying", "err", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("rfbserver: accept: %w", err)
		}
		backoff = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			// ServeConn logs why a connection ended.
			_ = s.ServeConn(ctx, nc)
		}()
	}
}

// Source is where a connection takes its pictures from: what changed since
// its previous Take, and a signal when there is something new.
// framebuffer.Viewer and session.Viewer satisfy it.
type Source interface {
	Changed() <-chan struct{}
	Take(dst *framebuffer.Canvas) framebuffer.Update
}

// ServeConn runs the RFB protocol on nc until the client disconnects, breaks
// the protocol or ctx ends, and closes nc. It returns nil when the client
// closed the connection or ctx ended, else why the connection was dropped
// (which it also logs).
func (s *Server) ServeConn(ctx context.Context, nc net.Conn) error {
	if s.FB == nil {
		nc.Close()
		return errors.New("rfbserver: Server.FB is nil")
	}
	viewer := s.FB.Subscribe()
	defer viewer.Close()
	return s.ServeSource(ctx, nc, viewer, s.Input)
}

// ServeSource is ServeConn with the connection's pictures taken from src
// (which the caller subscribed and closes) and its input sent to in (nil:
// view-only) instead of Server.Input. The session hub's viewers use it, so
// that each RFB client counts as a viewer of its session. s.FB still gives
// the size and name announced in ServerInit.
func (s *Server) ServeSource(ctx context.Context, nc net.Conn, src Source, in InputSink) error {
	if s.FB == nil || src == nil {
		nc.Close()
		return errors.New("rfbserver: Server.FB or the source is nil")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer nc.Close()
	// Closing the socket is what unblocks the reader and the sender.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()

	log := s.logger().With("remote", remoteString(nc))
	c := newConn(s, nc, log)
	c.in = in

	if err := c.handshake(); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if !c.failureLogged {
			log.Warn("rfbserver: handshake failed", "err", err)
		}
		return err
	}
	log.Info("rfbserver: client connected", "version", c.version.String(), "auth", c.auth)

	snd := newSender(c, src)
	sendErr := make(chan error, 1)
	go func() {
		err := snd.run(ctx)
		cancel() // a failed sender ends the reader too
		sendErr <- err
	}()
	rerr := c.readLoop() // never nil
	if !isClosed(rerr) {
		// Log before the socket closes, so the reason is on record by
		// the time the client sees the connection end.
		log.Warn("rfbserver: dropping client", "reason", rerr)
	}
	cancel()
	serr := <-sendErr
	if !isClosed(rerr) {
		return rerr
	}
	if serr != nil && !isClosed(serr) {
		log.Warn("rfbserver: dropping client", "reason", serr)
		return serr
	}
	log.Info("rfbserver: client disconnected")
	return nil
}

// remoteString names the peer of nc for logs.
func remoteString(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil {
		return a.String()
	}
	return "unknown"
}

// isClosed reports whether err is what reading or writing a socket that was
// closed (by us or the peer) returns.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
