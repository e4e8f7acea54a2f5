// Package websockify is a drop-in replacement for websockify in front of
// noVNC: an http.Handler that accepts noVNC's WebSocket (subprotocol
// "binary", the legacy "base64", or none), resolves a websockify-style token
// (?token=NAME, a token cookie, or a path suffix /websockify/NAME) to a
// console target, and then either
//
//   - passes the bytes through to the target's VNC server unchanged, both
//     ways, as websockify does (ModePassthrough; only for vnc:// targets),
//     or
//   - re-encodes: it joins the console's session in the hub and speaks RFB
//     to noVNC itself with rfbserver, from the session's shared
//     framebuffer (ModeReencode). Any console kvmgate can open is served
//     this way, however many viewers watch it, each at its own pace.
//
// The same re-encoding side serves native VNC viewers on a plain TCP
// listener (ServeRFB).
//
// A Handler owns one goroutine pair per connection (one reads the browser,
// one writes to it); Close ends them all and waits.
package websockify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"kvmgate/backend"
	"kvmgate/framebuffer"
	"kvmgate/rfbserver"
	"kvmgate/session"
)

// Mode says how a target is served to noVNC.
type Mode string

// Modes of serving a target.
const (
	// ModeAuto passes vnc:// targets through and re-encodes the rest.
	ModeAuto Mode = ""
	// ModePassthrough relays bytes unchanged; targets that do not speak
	// RFB (SPICE, BMCs) are still re-encoded.
	ModePassthrough Mode = "passthrough"
	// ModeReencode serves every target from the session hub.
	ModeReencode Mode = "reencode"
)

// ParseMode parses a --novnc-mode value ("", "auto", "passthrough",
// "reencode").
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return ModeAuto, nil
	case "passthrough", "pass-through":
		return ModePassthrough, nil
	case "reencode", "re-encode":
		return ModeReencode, nil
	}
	return "", fmt.Errorf("websockify: unknown mode %q (want passthrough or reencode)", s)
}

// Subprotocols, in the order they are preferred.
const (
	SubprotocolBinary = "binary"
	SubprotocolBase64 = "base64"
)

// DefaultPath is where the endpoint is usually mounted, and what noVNC asks
// for by default.
const DefaultPath = "/websockify"

// Defaults for Options.
const (
	DefaultConnectTimeout = 15 * time.Second
	relayBuffer           = 64 << 10
)

// Options configures a Handler.
type Options struct {
	// Lookup resolves a token to a target URL (as backend.ParseTarget
	// reads it). Nil means tokens are not accepted.
	Lookup func(token string) (target string, ok bool)
	// Target serves requests that carry no token; empty requires one.
	Target string
	// Mode picks pass-through or re-encoding (see Mode).
	Mode Mode
	// Hub opens consoles for re-encoding. Required unless every target is
	// passed through.
	Hub *session.Hub
	// Password returns the VNC password noVNC must give for a re-encoded
	// target; "" means none. Passed-through targets authenticate noVNC
	// themselves.
	Password func(target string) string
	// CheckOrigin decides whether a browser origin may connect; nil allows
	// requests without an Origin header and those whose origin has the
	// request's host.
	CheckOrigin func(r *http.Request) bool
	// Path is the prefix the handler is mounted at (default DefaultPath);
	// a token may follow it as one more path element.
	Path string
	// Heartbeat, when set, sends a WebSocket ping this often (websockify's
	// --heartbeat).
	Heartbeat time.Duration
	// IdleTimeout, when set, closes a connection that has carried nothing
	// either way for this long.
	IdleTimeout time.Duration
	// RecordDir, when set, records every connection's traffic there in
	// websockify's --record format, one file per connection.
	RecordDir string
	// ConnectTimeout bounds reaching the target (default
	// DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// Dial connects to pass-through targets; nil uses a net.Dialer.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Logger receives one line per connection event; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Stats counts a Handler's traffic since it was made.
type Stats struct {
	Connections      atomic.Uint64 // WebSocket and RFB connections accepted
	Refused          atomic.Uint64 // requests refused before the upgrade
	BytesToViewers   atomic.Uint64 // payload bytes sent to viewers
	BytesFromViewers atomic.Uint64 // payload bytes received from viewers
}

// Handler is the websockify endpoint. Create it with New.
type Handler struct {
	opts     Options
	log      *slog.Logger
	upgrader websocket.Upgrader
	stats    Stats
	seq      atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex // orders wg.Add against Close
	wg     sync.WaitGroup
}

// New checks opts and returns a Handler.
func New(opts Options) (*Handler, error) {
	if opts.Path == "" {
		opts.Path = DefaultPath
	}
	opts.Path = "/" + strings.Trim(opts.Path, "/")
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	switch opts.Mode {
	case ModeAuto, ModePassthrough, ModeReencode:
	default:
		return nil, fmt.Errorf("websockify: unknown mode %q", opts.Mode)
	}
	if opts.Target != "" {
		u, err := backend.ParseTarget(opts.Target)
		if err != nil {
			return nil, fmt.Errorf("websockify: target: %w", err)
		}
		opts.Target = u.String()
	}
	if opts.RecordDir != "" {
		if st, err := os.Stat(opts.RecordDir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("websockify: record directory %q: not a directory", opts.RecordDir)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{opts: opts, log: log}
	h.upgrader = websocket.Upgrader{
		ReadBufferSize:  16 << 10,
		WriteBufferSize: 64 << 10,
		// Origins are checked before the upgrade so refusals get a reason.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h, nil
}

// Stats returns the handler's counters.
func (h *Handler) Stats() *Stats { return &h.stats }

// Close ends every connection and waits for their goroutines.
func (h *Handler) Close() {
	h.mu.Lock()
	h.cancel()
	h.mu.Unlock()
	h.wg.Wait()
}

// track registers a connection goroutine unless the handler is closing.
func (h *Handler) track() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx.Err() != nil {
		return false
	}
	h.wg.Add(1)
	return true
}

// originAllowed applies opts.CheckOrigin or the same-host rule.
func (h *Handler) originAllowed(r *http.Request) bool {
	if h.opts.CheckOrigin != nil {
		return h.opts.CheckOrigin(r)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// token returns the token a request names: ?token=, a path element after
// the mount path, or the token cookie, in websockify's order.
func (h *Handler) token(r *http.Request) string {
	if t := r.URL.Query().Get("token"); t != "" {
		return strings.TrimRight(t, "\n")
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, h.opts.Path+"/"); ok && rest != "" && !strings.Contains(rest, "/") {
		return rest
	}
	if c, err := r.Cookie("token"); err == nil && c.Value != "" {
		return c.Value
	}
	return ""
}

// resolve returns the target a request asks for.
func (h *Handler) resolve(r *http.Request) (string, error) {
	tok := h.token(r)
	switch {
	case tok != "":
		if h.opts.Lookup == nil {
			return "", errors.New("tokens are not configured")
		}
		target, ok := h.opts.Lookup(tok)
		if !ok {
			return "", errors.New("unknown token")
		}
		u, err := backend.ParseTarget(target)
		if err != nil {
			return "", fmt.Errorf("token target: %w", err)
		}
		return u.String(), nil
	case h.opts.Target != "":
		return h.opts.Target, nil
	}
	return "", errors.New("a token is required")
}

// passThrough reports whether target is relayed byte for byte.
func (h *Handler) passThrough(target string) (addr string, ok bool) {
	if h.opts.Mode == ModeReencode {
		return "", false
	}
	u, err := backend.ParseTarget(target)
	if err != nil || u.Scheme != "vnc" {
		return "", false
	}
	return u.Host, true
}

// pickSubprotocol chooses what websockify would: binary when offered, else
// base64, else none.
func pickSubprotocol(r *http.Request) string {
	offered := websocket.Subprotocols(r)
	for _, want := range []string{SubprotocolBinary, SubprotocolBase64} {
		for _, p := range offered {
			if p == want {
				return want
			}
		}
	}
	return ""
}

func refuse(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}

// ServeHTTP upgrades a noVNC connection and serves it until either side
// ends it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.log.With("remote", r.RemoteAddr)
	if !websocket.IsWebSocketUpgrade(r) {
		refuse(w, http.StatusBadRequest, "a WebSocket upgrade is required")
		return
	}
	if !h.originAllowed(r) {
		h.stats.Refused.Add(1)
		log.Warn("websockify: refused", "reason", "origin", "origin", r.Header.Get("Origin"))
		refuse(w, http.StatusForbidden, "origin not allowed")
		return
	}
	target, err := h.resolve(r)
	if err != nil {
		h.stats.Refused.Add(1)
		log.Warn("websockify: refused", "reason", err.Error())
		refuse(w, http.StatusForbidden, err.Error())
		return
	}
	var hdr http.Header
	proto := pickSubprotocol(r)
	if proto != "" {
		hdr = http.Header{"Sec-Websocket-Protocol": {proto}}
	}
	ws, err := h.upgrader.Upgrade(w, r, hdr)
	if err != nil {
		log.Warn("websockify: upgrade failed", "err", err)
		return
	}
	if !h.track() {
		closeWS(ws, websocket.CloseGoingAway, "server shutting down")
		return
	}
	defer h.wg.Done()
	h.stats.Connections.Add(1)
	id := h.seq.Add(1)
	log = log.With("conn", id)

	last := new(atomic.Int64)
	last.Store(time.Now().UnixNano())
	c := &wsConn{ws: ws, b64: proto == SubprotocolBase64, remote: remoteAddr(r.RemoteAddr), stats: &h.stats, last: last}
	if h.opts.RecordDir != "" {
		rec, err := newRecorder(h.opts.RecordDir, fmt.Sprintf("kvmgate-%d-%d.rec", time.Now().Unix(), id))
		if err != nil {
			log.Warn("websockify: not recording", "err", err)
		} else {
			c.rec = rec
			defer func() {
				if err := rec.Close(); err != nil {
					log.Warn("websockify: recording", "err", err)
				}
			}()
		}
	}

	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	stopKeep := h.keepalive(ctx, cancel, ws, last)
	defer stopKeep()

	if addr, ok := h.passThrough(target); ok {
		log.Info("websockify: pass-through", "target", addr, "subprotocol", proto)
		h.relay(ctx, c, addr, log)
		return
	}
	log.Info("websockify: re-encoding", "target", redact(target), "subprotocol", proto)
	h.reencode(ctx, c, target, log)
}

// keepalive runs the heartbeat and idle timer of one connection until the
// returned function is called. An idle connection's context is cancelled.
func (h *Handler) keepalive(ctx context.Context, cancel context.CancelFunc, ws *websocket.Conn, last *atomic.Int64) func() {
	hb, idle := h.opts.Heartbeat, h.opts.IdleTimeout
	if hb <= 0 && idle <= 0 {
		return func() {}
	}
	tick := hb
	if tick <= 0 || (idle > 0 && idle/4 < tick) {
		tick = max(idle/4, 10*time.Millisecond)
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(tick)
		defer t.Stop()
		nextPing := time.Now().Add(hb)
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				if idle > 0 && now.Sub(time.Unix(0, last.Load())) > idle {
					h.log.Info("websockify: closing idle connection", "idle", idle)
					cancel()
					return
				}
				if hb > 0 && !now.Before(nextPing) {
					nextPing = now.Add(hb)
					if err := ws.WriteControl(websocket.PingMessage, nil, now.Add(10*time.Second)); err != nil {
						cancel()
						return
					}
				}
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// closeWS sends a close frame with a reason and closes ws.
func closeWS(ws *websocket.Conn, code int, reason string) {
	if len(reason) > 120 {
		reason = reason[:120]
	}
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	ws.Close()
}

// redact drops user information from a target for logs.
func redact(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return "?"
	}
	return u.Redacted()
}

// relay connects to addr and copies bytes both ways until either side
// ends, as websockify does.
func (h *Handler) relay(ctx context.Context, c *wsConn, addr string, log *slog.Logger) {
	dctx, dcancel := context.WithTimeout(ctx, h.opts.ConnectTimeout)
	var tc net.Conn
	var err error
	if h.opts.Dial != nil {
		tc, err = h.opts.Dial(dctx, addr)
	} else {
		var d net.Dialer
		tc, err = d.DialContext(dctx, "tcp", addr)
	}
	dcancel()
	if err != nil {
		log.Warn("websockify: target unreachable", "target", addr, "err", err)
		closeWS(c.ws, websocket.CloseInternalServerErr, "target unreachable")
		return
	}
	stop := context.AfterFunc(ctx, func() {
		tc.Close()
		c.ws.Close()
	})
	defer stop()

	up := make(chan error, 1)
	go func() {
		// Browser to target: c.Read counts and records.
		buf := make([]byte, relayBuffer)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if _, werr := tc.Write(buf[:n]); werr != nil {
					tc.Close()
					up <- werr
					return
				}
			}
			if err != nil {
				// The browser left: end the target connection too, which
				// stops the loop below.
				tc.Close()
				up <- err
				return
			}
		}
	}()
	buf := make([]byte, relayBuffer)
	var downErr error
	for {
		n, err := tc.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				downErr = werr
				break
			}
		}
		if err != nil {
			downErr = err
			break
		}
	}
	// The target ended (or the browser stopped taking data): tell the
	// browser, then stop the other direction.
	if tcp, ok := tc.(*net.TCPConn); ok {
		_ = tcp.CloseWrite()
	}
	c.Close()
	tc.Close()
	upErr := <-up
	log.Info("websockify: pass-through ended", "target", addr, "down", errString(downErr), "up", errString(upErr))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// reencode serves nc from the target's session with rfbserver.
func (h *Handler) reencode(ctx context.Context, nc net.Conn, target string, log *slog.Logger) {
	if err := h.serveRFB(ctx, nc, target, log); err != nil {
		if ws, ok := nc.(*wsConn); ok {
			closeWS(ws.ws, websocket.CloseInternalServerErr, err.Error())
		}
		nc.Close()
	}
}

// serveRFB joins target's session and speaks RFB on nc until either ends.
// It returns an error (without closing nc) only when the console could not
// be reached; nc is closed otherwise.
func (h *Handler) serveRFB(ctx context.Context, nc net.Conn, target string, log *slog.Logger) error {
	if h.opts.Hub == nil {
		log.Warn("websockify: no session hub for re-encoding", "target", redact(target))
		return errors.New("re-encoding is not configured")
	}
	v, err := h.opts.Hub.Join(target)
	if err != nil {
		log.Warn("websockify: joining session", "err", err)
		return errors.New("console unavailable")
	}
	defer v.Leave()
	sess := v.Session()
	fb := sess.Framebuffer()
	if err := waitPicture(ctx, v, fb, h.opts.ConnectTimeout); err != nil {
		st := sess.Status()
		log.Warn("websockify: console not ready", "state", st.State, "err", err)
		return fmt.Errorf("console not ready: %s", st.State)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-v.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	srv := &rfbserver.Server{FB: fb, Logger: log.With("session", sess.ID())}
	if h.opts.Password != nil {
		srv.Password = h.opts.Password(target)
	}
	// ServeSource logs how the connection ended.
	_ = srv.ServeSource(ctx, nc, v, v)
	return nil
}

// waitPicture waits until the session's framebuffer has a size, that is
// the backend has connected and sent its first picture.
func waitPicture(ctx context.Context, v *session.Viewer, fb *framebuffer.Framebuffer, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		if w, h := fb.Size(); w > 0 && h > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-v.Done():
			return errors.New("session ended")
		case <-t.C:
			return errors.New("timed out waiting for the console's first picture")
		case <-v.Changed():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ServeRFB serves target, re-encoded, to native VNC viewers that connect
// to ln (kvmgate serve --rfb-listen), until ctx ends or Close is called.
// It closes ln and waits for its connections before returning.
func (h *Handler) ServeRFB(ctx context.Context, ln net.Listener, target string) error {
	u, err := backend.ParseTarget(target)
	if err != nil {
		ln.Close()
		return fmt.Errorf("websockify: rfb listener target: %w", err)
	}
	target = u.String()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(h.ctx, cancel)
	defer stop()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("websockify: rfb listener: %w", err)
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			h.log.Warn("websockify: rfb accept failed; retrying", "err", err, "backoff", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		h.stats.Connections.Add(1)
		log := h.log.With("remote", nc.RemoteAddr().String(), "conn", h.seq.Add(1))
		log.Info("websockify: rfb viewer", "target", redact(target))
		counted := &countingConn{Conn: nc, stats: &h.stats}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.serveRFB(ctx, counted, target, log); err != nil {
				nc.Close()
			}
		}()
	}
}

// countingConn counts a TCP viewer's bytes in Stats.
type countingConn struct {
	net.Conn
	stats *Stats
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.stats.BytesFromViewers.Add(uint64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.stats.BytesToViewers.Add(uint64(n))
	return n, err
}
