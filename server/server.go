// Package server is kvmgate's HTTP front: the console page and static
// client, the WebSocket transport of the browser wire protocol v1
// (docs/protocol.md), the JSON API for sessions, health and Prometheus
// metrics. It resolves a browser's request to a console target (single
// target, websockify-style token, or signed ticket) and joins the session
// hub; one goroutine per viewer sends frames and one reads its messages.
package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"kvmgate/backend"
	"kvmgate/server/websockify"
	"kvmgate/session"
)

// Options configures a Server.
type Options struct {
	// Listen is the address ListenAndServe binds, e.g. "127.0.0.1:8080".
	Listen string
	// Target is the single console served at "/" (e.g. vnc://host:5900).
	Target string
	// TokenPath is a websockify-style token file or directory; /ws?token=
	// NAME connects to the target it names.
	TokenPath string
	// AllowedOrigins lists the browser origins (scheme://host[:port]) that
	// may open WebSockets; "*" allows any. Empty means same host as the
	// request only.
	AllowedOrigins []string
	// Secrets returns a target's credentials. They never reach a browser
	// or a log.
	Secrets func(target string) (backend.Secrets, error)
	// Open overrides how consoles are opened (tests); nil means
	// backend.Open with Secrets.
	Open func(ctx context.Context, target string) (backend.Console, error)
	// IdleTimeout is how long a console stays connected without viewers
	// (default session.DefaultIdleTimeout).
	IdleTimeout time.Duration
	// TicketKey signs tickets; empty means a random key per process.
	TicketKey []byte
	// TicketTTL is the lifetime of a ticket (default DefaultTicketTTL).
	TicketTTL time.Duration
	// APIKey enables the JSON API for requests bearing it; empty disables
	// the API.
	APIKey string
	// Client holds the browser client: index.html and its modules at the
	// root. Nil serves a placeholder page.
	Client fs.FS
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
	// NoVNC, when not nil, also serves noVNC (websockify-compatible
	// endpoint) and native VNC viewers; see NoVNCOptions.
	NoVNC *NoVNCOptions
	// WebRTC configures the WebRTC video transport (ICE addresses, ports,
	// STUN/TURN servers); see WebRTCOptions.
	WebRTC WebRTCOptions
}

// Server serves consoles to browsers. Create it with New.
type Server struct {
	opts    Options
	log     *slog.Logger
	hub     *session.Hub
	tickets *Tickets
	tokens  *TokenSource
	target  string // normalised Options.Target
	static  *staticFiles
	router  chi.Router
	novnc   *websockify.Handler // nil unless Options.NoVNC is set

	// ctx ends every viewer connection when the server closes.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // counts viewer connection goroutines
	connMu sync.Mutex     // orders wg.Add against Close

	metrics metrics
}

type metrics struct {
	bytesSent     atomic.Uint64
	framesSent    atomic.Uint64
	viewersTotal  atomic.Uint64
	wsRejected    atomic.Uint64
	protocolError atomic.Uint64
}

// New checks opts and builds a server. Its sessions start on demand.
func New(opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{opts: opts, log: log}
	if opts.Target != "" {
		u, err := backend.ParseTarget(opts.Target)
		if err != nil {
			return nil, fmt.Errorf("server: --target: %w", err)
		}
		s.target = u.String()
	}
	if opts.TokenPath != "" {
		ts, err := NewTokenSource(opts.TokenPath, log)
		if err != nil {
			return nil, err
		}
		s.tokens = ts
	}
	for _, o := range opts.AllowedOrigins {
		if o == "*" {
			continue
		}
		if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("server: allowed origin %q: want scheme://host[:port]", o)
		}
	}
	s.tickets = NewTickets(opts.TicketKey, opts.TicketTTL)
	s.hub = session.NewHub(session.Options{
		Open: opts.Open, Secrets: opts.Secrets, IdleTimeout: opts.IdleTimeout, Logger: log,
	})
	s.static = newStaticFiles(opts.Client)
	if opts.NoVNC != nil {
		if err := s.newNoVNC(); err != nil {
			return nil, err
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.router = s.routes()
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.router }

// Hub returns the session hub.
func (s *Server) Hub() *session.Hub { return s.hub }

// Tickets returns the ticket signer.
func (s *Server) Tickets() *Tickets { return s.tickets }

// Close ends every viewer connection and session and waits for their
// goroutines.
func (s *Server) Close() {
	s.connMu.Lock()
	s.cancel()
	s.connMu.Unlock()
	s.wg.Wait()
	if s.novnc != nil {
		s.novnc.Close()
	}
	s.hub.Close()
}

// ListenAndServe serves on opts.Listen until ctx ends, then shuts down
// gracefully. ready, if not nil, is called with the console URL once the
// listener is bound.
func (s *Server) ListenAndServe(ctx context.Context, ready func(url string)) error {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("server: listen: %w", err)
	}
	return s.Serve(ctx, ln, ready)
}

// Serve is ListenAndServe on an existing listener, which it closes.
func (s *Server) Serve(ctx context.Context, ln net.Listener, ready func(url string)) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	stopRFB, rerr := s.serveRFBListener(ctx)
	if rerr != nil {
		ln.Close()
		return rerr
	}
	defer stopRFB()
	u := "http://" + ln.Addr().String() + "/"
	s.log.Info("listening", "url", u)
	if ready != nil {
		ready(u)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	s.Close()
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	return nil
}

func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(securityHeaders)
	r.Get("/", s.handleIndex)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	r.Get("/metrics", s.handleMetrics)
	r.Get("/ws", s.handleWS)
	if s.novnc != nil {
		s.mountNoVNC(r)
	}
	r.Route("/api", func(r chi.Router) {
		r.Use(s.apiAuth)
		r.Post("/sessions", s.apiCreate)
		r.Get("/sessions", s.apiList)
		r.Delete("/sessions/{id}", s.apiDelete)
	})
	r.Get("/client/*", func(w http.ResponseWriter, r *http.Request) {
		s.static.serve(w, r, strings.TrimPrefix(r.URL.Path, "/client/"))
	})
	// The page may also refer to its modules relative to "/".
	r.Get("/*", func(w http.ResponseWriter, r *http.Request) {
		s.static.serve(w, r, strings.TrimPrefix(r.URL.Path, "/"))
	})
	return r
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// originAllowed applies the origin rules: no Origin header (not a browser)
// passes; otherwise the origin must be listed, or with no list configured
// have the request's own host.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if len(s.opts.AllowedOrigins) == 0 {
		u, err := url.Parse(origin)
		return err == nil && strings.EqualFold(u.Host, r.Host)
	}
	for _, a := range s.opts.AllowedOrigins {
		if a == "*" || strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return true
		}
	}
	return false
}

// resolve finds the target a /ws request asks for, or a reason to refuse.
func (s *Server) resolve(r *http.Request) (string, error) {
	q := r.URL.Query()
	switch {
	case q.Has("ticket"):
		target, err := s.tickets.Verify(q.Get("ticket"))
		if err != nil {
			return "", err
		}
		return target, nil
	case q.Has("token"):
		if s.tokens == nil {
			return "", errors.New("token targets are not configured")
		}
		target, ok := s.tokens.Lookup(q.Get("token"))
		if !ok {
			return "", errors.New("unknown token")
		}
		return target, nil
	case s.target != "":
		return s.target, nil
	default:
		return "", errors.New("a token or ticket is required")
	}
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}
