package server

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"kvmgate/backend"
)

// ParseTokens reads a websockify-style token file: one `token: host:port`
// (or `token: scheme://host:port`) per line, `#` comments and blank lines
// ignored. Targets are normalised as backend.ParseTarget does.
func ParseTokens(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, target, ok := strings.Cut(line, ":")
		name, target = strings.TrimSpace(name), strings.TrimSpace(target)
		if !ok || name == "" || target == "" {
			return nil, fmt.Errorf("server: token line %d: want `token: host:port`", n)
		}
		u, err := backend.ParseTarget(target)
		if err != nil {
			return nil, fmt.Errorf("server: token line %d: %w", n, err)
		}
		out[name] = u.String()
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("server: reading tokens: %w", err)
	}
	return out, nil
}

// TokenCheckInterval is how often a TokenSource looks at its files' mtimes.
const TokenCheckInterval = time.Second

// TokenSource resolves websockify-style tokens from a file or from every
// file in a directory (as OpenStack and OpenNebula write them). It re-reads
// them when a modification time or the set of files changes, checking at
// most once per TokenCheckInterval on lookup; a file that fails to parse
// keeps the previous tokens. It is safe for concurrent use.
type TokenSource struct {
	path string
	log  *slog.Logger

	mu sync.Mutex
	// mu guards the following.
	tokens    map[string]string
	stamp     string // file names, sizes and mtimes of the last load
	lastCheck time.Time
}

// NewTokenSource loads the tokens at path, a file or a directory.
func NewTokenSource(path string, log *slog.Logger) (*TokenSource, error) {
	if log == nil {
		log = slog.Default()
	}
	ts := &TokenSource{path: path, log: log}
	stamp, err := ts.stampNow()
	if err != nil {
		return nil, err
	}
	tokens, err := ts.load()
	if err != nil {
		return nil, err
	}
	ts.tokens, ts.stamp, ts.lastCheck = tokens, stamp, time.Now()
	return ts, nil
}

// files lists the token files: the path itself, or the regular, non-hidden
// files of the directory, sorted.
func (ts *TokenSource) files() ([]string, error) {
	fi, err := os.Stat(ts.path)
	if err != nil {
		return nil, fmt.Errorf("server: token source: %w", err)
	}
	if !fi.IsDir() {
		return []string{ts.path}, nil
	}
	ents, err := os.ReadDir(ts.path)
	if err != nil {
		return nil, fmt.Errorf("server: token dir: %w", err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
			continue
		}
		out = append(out, filepath.Join(ts.path, e.Name()))
	}
	sort.Strings(out)
	return out, nil
}

func (ts *TokenSource) stampNow() (string, error) {
	files, err := ts.files()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s\x00%d\x00%d\n", f, fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String(), nil
}

func (ts *TokenSource) load() (map[string]string, error) {
	files, err := ts.files()
	if err != nil {
		return nil, err
	}
	all := map[string]string{}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("server: token file: %w", err)
		}
		tokens, err := ParseTokens(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for k, v := range tokens {
			all[k] = v
		}
	}
	return all, nil
}

// Reload re-reads the files if they changed since the last load.
func (ts *TokenSource) Reload() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.reloadLocked()
}

func (ts *TokenSource) reloadLocked() {
	ts.lastCheck = time.Now()
	stamp, err := ts.stampNow()
	if err != nil {
		ts.log.Warn("token source unreadable; keeping previous tokens", "err", err)
		return
	}
	if stamp == ts.stamp {
		return
	}
	tokens, err := ts.load()
	if err != nil {
		ts.log.Warn("token file invalid; keeping previous tokens", "err", err)
		return
	}
	ts.tokens, ts.stamp = tokens, stamp
	ts.log.Info("tokens reloaded", "count", len(tokens))
}

// Lookup returns the target for a token.
func (ts *TokenSource) Lookup(token string) (string, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if time.Since(ts.lastCheck) >= TokenCheckInterval {
		ts.reloadLocked()
	}
	t, ok := ts.tokens[token]
	return t, ok
}

// Len returns the number of known tokens.
func (ts *TokenSource) Len() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.tokens)
}
