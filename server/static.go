package server

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"html"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// placeholderPage is served at "/" when no client is built in.
const placeholderPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>kvmgate</title></head>
<body><p>kvmgate is running, but this build has no browser client.</p></body></html>
`

// staticFiles serves the client's files with strong ETags and gzip,
// compressing each file once.
type staticFiles struct {
	fsys fs.FS

	mu sync.Mutex
	// mu guards cache.
	cache map[string]*staticFile
}

type staticFile struct {
	body  []byte
	gz    []byte // nil when compression does not pay
	etag  string
	ctype string
}

func newStaticFiles(fsys fs.FS) *staticFiles {
	return &staticFiles{fsys: fsys, cache: map[string]*staticFile{}}
}

func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || strings.Contains(ctype, "javascript") ||
		strings.Contains(ctype, "json") || strings.Contains(ctype, "svg") || strings.Contains(ctype, "wasm")
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".json", ".map":
		return "application/json"
	case ".svg":
		return "image/svg+xml"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// file loads name (a clean, slash-separated path inside the FS).
func (s *staticFiles) file(name string) (*staticFile, bool) {
	if s.fsys == nil || !fs.ValidPath(name) || name == "." {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.cache[name]; ok {
		return f, true
	}
	body, err := fs.ReadFile(s.fsys, name)
	if err != nil {
		return nil, false
	}
	sum := sha256.Sum256(body)
	f := &staticFile{body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, ctype: contentType(name)}
	if compressible(f.ctype) && len(body) > 256 {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(body)
		_ = zw.Close()
		if buf.Len() < len(body)*9/10 {
			f.gz = buf.Bytes()
		}
	}
	s.cache[name] = f
	return f, true
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && !strings.Contains(strings.ReplaceAll(params, " ", ""), "q=0") {
			return true
		}
		if strings.TrimSpace(enc) == "*" {
			return true
		}
	}
	return false
}

func etagMatch(r *http.Request, etag string) bool {
	for _, t := range strings.Split(r.Header.Get("If-None-Match"), ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// serve writes the file name or a 404.
func (s *staticFiles) serve(w http.ResponseWriter, r *http.Request, name string) {
	f, ok := s.file(name)
	if !ok {
		httpError(w, http.StatusNotFound, "not found")
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("Cache-Control", "no-cache") // revalidate with the ETag
	h.Set("Vary", "Accept-Encoding")
	etag := f.etag
	body := f.body
	if f.gz != nil && acceptsGzip(r) {
		// A distinct ETag per representation, as caches require.
		etag = etag[:len(etag)-1] + `-gz"`
		body = f.gz
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", etag)
	if etagMatch(r, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// emptyTicketMeta is the placeholder a client page may carry for the ticket.
const emptyTicketMeta = `<meta name="kvmgate-ticket" content="">`

// handleIndex serves the console page. For the single --target console
// (no token or ticket in the query) it embeds a fresh ticket as
// <meta name="kvmgate-ticket">, filling the page's empty tag of that name or
// adding one to its head.
func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	page := []byte(placeholderPage)
	if f, ok := s.static.file("index.html"); ok {
		page = f.body
	}
	q := r.URL.Query()
	if s.target != "" && !q.Has("token") && !q.Has("ticket") {
		ticket, _ := s.tickets.Issue(s.target)
		meta := `<meta name="kvmgate-ticket" content="` + html.EscapeString(ticket) + `">`
		if bytes.Contains(page, []byte(emptyTicketMeta)) {
			page = bytes.Replace(page, []byte(emptyTicketMeta), []byte(meta), 1)
		} else {
			page = injectHead(page, meta)
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(page)
}

// injectHead inserts tag right after <head ...> (or at the start when the
// page has no head element).
func injectHead(page []byte, tag string) []byte {
	lower := bytes.ToLower(page)
	if i := bytes.Index(lower, []byte("<head")); i >= 0 {
		if j := bytes.IndexByte(page[i:], '>'); j >= 0 {
			at := i + j + 1
			out := make([]byte, 0, len(page)+len(tag)+1)
			out = append(out, page[:at]...)
			out = append(out, '\n')
			out = append(out, tag...)
			return append(out, page[at:]...)
		}
	}
	return append([]byte(tag+"\n"), page...)
}
