package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"kvmgate/server/websockify"
)

// NoVNCOptions turns on the websockify-compatible endpoint for noVNC and,
// optionally, a plain RFB listener for native VNC viewers (package
// websockify).
type NoVNCOptions struct {
	// Path is where noVNC connects (default websockify.DefaultPath); a
	// token may follow it as a path element, or come as ?token=.
	Path string
	// Mode is how VNC targets reach noVNC (websockify.ModeAuto passes
	// them through, as websockify does).
	Mode websockify.Mode
	// Web, when set, serves a noVNC copy from this directory at /novnc/
	// (websockify's --web).
	Web string
	// Heartbeat pings noVNC connections this often (websockify's
	// --heartbeat); zero never.
	Heartbeat time.Duration
	// IdleTimeout closes a noVNC connection that carried nothing for this
	// long; zero never.
	IdleTimeout time.Duration
	// RecordDir records every noVNC connection in websockify's --record
	// format.
	RecordDir string
	// Password returns the VNC password re-encoded viewers must give for
	// a target; nil or "" means none.
	Password func(target string) string
	// RFBListen, when set, serves Options.Target re-encoded to native VNC
	// viewers on this TCP address.
	RFBListen string
}

// newNoVNC builds the websockify handler on the server's hub, tokens and
// origin rules.
func (s *Server) newNoVNC() error {
	o := s.opts.NoVNC
	if o.RFBListen != "" && s.target == "" {
		return errors.New("server: an RFB listener needs a single target")
	}
	h, err := websockify.New(websockify.Options{
		Lookup: func(tok string) (string, bool) {
			if s.tokens == nil {
				return "", false
			}
			return s.tokens.Lookup(tok)
		},
		Target:      s.target,
		Mode:        o.Mode,
		Hub:         s.hub,
		Password:    o.Password,
		CheckOrigin: s.originAllowed,
		Path:        o.Path,
		Heartbeat:   o.Heartbeat,
		IdleTimeout: o.IdleTimeout,
		RecordDir:   o.RecordDir,
		Logger:      s.log,
	})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.novnc = h
	return nil
}

// mountNoVNC adds the websockify endpoint (and the noVNC copy) to r.
func (s *Server) mountNoVNC(r chi.Router) {
	o := s.opts.NoVNC
	path := o.Path
	if path == "" {
		path = websockify.DefaultPath
	}
	path = "/" + strings.Trim(path, "/")
	r.Handle(path, s.novnc)
	r.Handle(path+"/*", s.novnc)
	if o.Web != "" {
		r.Handle("/novnc/*", http.StripPrefix("/novnc/", http.FileServer(http.Dir(o.Web))))
	}
}

// serveRFBListener serves native VNC viewers until ctx ends, when the
// options ask for it. It returns at once otherwise.
func (s *Server) serveRFBListener(ctx context.Context) (stop func(), err error) {
	if s.novnc == nil || s.opts.NoVNC.RFBListen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", s.opts.NoVNC.RFBListen)
	if err != nil {
		return nil, fmt.Errorf("server: rfb listen: %w", err)
	}
	s.log.Info("serving VNC viewers", "addr", ln.Addr().String())
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.novnc.ServeRFB(ctx, ln, s.target); err != nil {
			s.log.Warn("rfb listener stopped", "err", err)
		}
	}()
	return func() {
		cancel()
		<-done
	}, nil
}
