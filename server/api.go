package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"kvmgate/backend"
)

// maxAPIBody bounds API request bodies.
const maxAPIBody = 64 << 10

// apiAuth admits requests that bear the API key; without a key configured
// the API does not exist.
func (s *Server) apiAuth(next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(s.opts.APIKey))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.APIKey == "" {
			apiError(w, http.StatusNotFound, "the API is disabled (no API key configured)")
			return
		}
		auth := r.Header.Get("Authorization")
		key, ok := strings.CutPrefix(auth, "Bearer ")
		got := sha256.Sum256([]byte(key))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kvmgate"`)
			apiError(w, http.StatusUnauthorized, "missing or wrong API key")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func apiError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// CreateRequest is the body of POST /api/sessions.
type CreateRequest struct {
	Target string `json:"target"`
}

// CreateResponse answers POST /api/sessions.
type CreateResponse struct {
	ID      string    `json:"id"`
	Ticket  string    `json:"ticket"`
	URL     string    `json:"url"`
	Expires time.Time `json:"expires"`
}

func (s *Server) apiCreate(w http.ResponseWriter, r *http.Request) {
	var req CreateRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAPIBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, fmt.Sprintf("bad request body: %v", err))
		return
	}
	u, err := backend.ParseTarget(req.Target)
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !schemeKnown(u.Scheme) && s.opts.Open == nil {
		apiError(w, http.StatusBadRequest, fmt.Sprintf("no protocol for %q targets (known: %v)", u.Scheme, backend.Schemes()))
		return
	}
	target := u.String()
	sess, err := s.hub.Session(target)
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	ticket, exp := s.tickets.Issue(target)
	writeJSON(w, http.StatusCreated, CreateResponse{
		ID: sess.ID(), Ticket: ticket, Expires: exp.UTC(),
		URL: baseURL(r) + "/?ticket=" + url.QueryEscape(ticket),
	})
}

func schemeKnown(scheme string) bool {
	for _, s := range backend.Schemes() {
		if s == scheme {
			return true
		}
	}
	return false
}

// baseURL is the scheme and host the request reached us at.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) apiList(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.hub.List())
}

func (s *Server) apiDelete(w http.ResponseWriter, r *http.Request) {
	sess := s.hub.Lookup(chi.URLParam(r, "id"))
	if sess == nil {
		apiError(w, http.StatusNotFound, "no such session")
		return
	}
	// Revoke first, so no ticket of the session can open it again between
	// the end and the revocation.
	s.tickets.Revoke(sess.Target())
	s.hub.End(sess.ID())
	w.WriteHeader(http.StatusNoContent)
}

// handleMetrics writes Prometheus text exposition format.
func (s *Server) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	sessions, viewers := s.hub.Counts()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m := &s.metrics
	for _, row := range []struct {
		name, typ, help string
		v               uint64
	}{
		{"kvmgate_sessions", "gauge", "Console sessions (backend connections) alive.", uint64(sessions)},
		{"kvmgate_viewers", "gauge", "WebSocket viewers attached.", uint64(viewers)},
		{"kvmgate_viewers_total", "counter", "WebSocket viewers accepted.", m.viewersTotal.Load()},
		{"kvmgate_ws_rejected_total", "counter", "WebSocket requests refused before the upgrade.", m.wsRejected.Load()},
		{"kvmgate_protocol_errors_total", "counter", "Viewer connections closed for protocol errors.", m.protocolError.Load()},
		{"kvmgate_frames_sent_total", "counter", "Frames sent to viewers.", m.framesSent.Load()},
		{"kvmgate_bytes_sent_total", "counter", "Bytes of WebSocket payload sent to viewers.", m.bytesSent.Load()},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", row.name, row.help, row.name, row.typ, row.name, row.v)
	}
}
