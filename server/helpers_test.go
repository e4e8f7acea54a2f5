package server_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gorilla/websocket"

	"kvmgate/encoders/tiles/tilestest"
	"kvmgate/framebuffer"
	"kvmgate/server"
	"kvmgate/session/sessiontest"
)

// wait is a deadlock guard, not a timing assertion.
const wait = 15 * time.Second

var testClient = fstest.MapFS{
	"index.html": {Data: []byte("<!doctype html><html><head><title>kvm</title></head><body><script type=module src=app.js></script></body></html>")},
	"app.js":     {Data: []byte(strings.Repeat("console.log('kvmgate client placeholder');\n", 50))},
}

type env struct {
	t       *testing.T
	srv     *server.Server
	ts      *httptest.Server
	backend *sessiontest.Backend
}

// newEnv starts a server with a fake backend. opts.Open and Client are
// filled in; Target defaults to vnc://fake:1.
func newEnv(t *testing.T, opts server.Options, w, h int) *env {
	t.Helper()
	base := runtime.NumGoroutine()
	b := &sessiontest.Backend{W: w, H: h}
	opts.Open = b.Open
	if opts.Client == nil {
		opts.Client = testClient
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
		if testing.Verbose() {
			opts.Logger = slog.Default()
		}
	}
	srv, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
		deadline := time.Now().Add(wait)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines: %d, baseline %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	return &env{t: t, srv: srv, ts: ts, backend: b}
}

func (e *env) wsURL(query string) string {
	u := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/ws"
	if query != "" {
		u += "?" + query
	}
	return u
}

// dial opens a WebSocket; it returns the handshake response on failure.
func (e *env) dial(query string, header http.Header) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{Subprotocols: []string{server.Subprotocol}, HandshakeTimeout: wait}
	return d.Dial(e.wsURL(query), header)
}

// client plays the browser: it decodes records onto a canvas and acks
// frames.
type client struct {
	t      *testing.T
	conn   *websocket.Conn
	dec    *tilestest.Decoder
	hello  map[string]any
	msgs   []map[string]any // JSON messages after hello
	frames int
	noAck  bool
}

func (e *env) connect(query string) *client {
	e.t.Helper()
	conn, resp, err := e.dial(query, nil)
	if err != nil {
		e.t.Fatalf("dial: %v (%v)", err, resp)
	}
	c := &client{t: e.t, conn: conn, dec: tilestest.NewDecoder()}
	e.t.Cleanup(func() { conn.Close() })
	c.hello = c.nextJSON()
	if c.hello["t"] != "hello" {
		e.t.Fatalf("first message %v, want hello", c.hello)
	}
	return c
}

func (c *client) nextJSON() map[string]any {
	c.t.Helper()
	for {
		typ, data, err := c.read()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if typ == websocket.TextMessage {
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				c.t.Fatal(err)
			}
			return m
		}
		c.apply(data)
	}
}

func (c *client) read() (int, []byte, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	return c.conn.ReadMessage()
}

func (c *client) apply(data []byte) {
	c.t.Helper()
	n, err := c.dec.Apply(data)
	if err != nil {
		c.t.Fatalf("decode: %v", err)
	}
	for range n {
		c.frames++
		if !c.noAck {
			c.send(map[string]any{"t": "ack", "f": c.dec.LastFrame})
		}
	}
}

func (c *client) send(m map[string]any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(m); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// step reads one message: binary records are applied, JSON is recorded.
// It returns whether a frame ended.
func (c *client) step() (bool, error) {
	typ, data, err := c.read()
	if err != nil {
		return false, err
	}
	if typ == websocket.TextMessage {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			return false, err
		}
		c.msgs = append(c.msgs, m)
		return false, nil
	}
	before := c.frames
	c.apply(data)
	return c.frames > before, nil
}

// converge reads frames until the decoded canvas equals want.
func (c *client) converge(want *framebuffer.Canvas) {
	c.t.Helper()
	deadline := time.Now().Add(wait)
	for !c.dec.Canvas.Equal(want) {
		if time.Now().After(deadline) {
			c.t.Fatalf("canvas did not converge to the framebuffer (%dx%d vs %dx%d, %d frames)", c.dec.Canvas.W, c.dec.Canvas.H, want.W, want.H, c.frames)
		}
		if _, err := c.step(); err != nil {
			c.t.Fatalf("read: %v", err)
		}
	}
}

// waitJSON reads until a JSON message of type typ arrives, and returns it.
func (c *client) waitJSON(typ string) map[string]any {
	c.t.Helper()
	for i := len(c.msgs) - 1; i >= 0; i-- {
		if c.msgs[i]["t"] == typ {
			m := c.msgs[i]
			c.msgs = append(c.msgs[:i], c.msgs[i+1:]...)
			return m
		}
	}
	for {
		if _, err := c.step(); err != nil {
			c.t.Fatalf("waiting for %q: %v", typ, err)
		}
		if m := c.msgs[len(c.msgs)-1:]; len(m) == 1 && m[0]["t"] == typ {
			c.msgs = c.msgs[:len(c.msgs)-1]
			return m[0]
		}
	}
}

// waitClose reads until the connection closes and returns the close error.
func (c *client) waitClose() *websocket.CloseError {
	c.t.Helper()
	for {
		if _, err := c.step(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce
			}
			c.t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	if resp == nil {
		t.Fatal("no response")
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(b)
}

// paint runs fn on the fake console and returns the framebuffer snapshot.
func (e *env) paint(c *client, fn func(*framebuffer.Canvas, *framebuffer.Batch)) *framebuffer.Canvas {
	e.t.Helper()
	con := e.backend.Last()
	if con == nil {
		e.t.Fatal("no console")
	}
	<-con.Ready
	if !con.Paint(e.t.Context(), fn) {
		e.t.Fatal("paint failed")
	}
	return e.snapshot()
}

func (e *env) snapshot() *framebuffer.Canvas {
	e.t.Helper()
	list := e.srv.Hub().List()
	if len(list) == 0 {
		e.t.Fatal("no session")
	}
	s := e.srv.Hub().Lookup(list[0].ID)
	if s == nil {
		e.t.Fatal("session gone")
	}
	return s.Framebuffer().Snapshot()
}
