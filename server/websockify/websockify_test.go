package websockify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"kvmgate/framebuffer"
	"kvmgate/input"
	"kvmgate/rfb"
	"kvmgate/session"
	"kvmgate/session/sessiontest"
)

var quiet = slog.New(slog.DiscardHandler)

// echoTarget is a TCP server that greets each connection with greeting,
// then echoes what it reads.
func echoTarget(t *testing.T, greeting []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.Write(greeting)
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// serve mounts h at DefaultPath (and below it) on a test HTTP server.
func serve(t *testing.T, h *Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(DefaultPath, h)
	mux.Handle(DefaultPath+"/", h)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		h.Close()
		hs.Close()
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http")
}

// readN reads n payload bytes from ws, decoding base64 text messages.
func readN(t *testing.T, ws *websocket.Conn, n int) []byte {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var out []byte
	for len(out) < n {
		typ, p, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", len(out), n, err)
		}
		if typ == websocket.TextMessage {
			if p, err = base64.StdEncoding.DecodeString(string(p)); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, p...)
	}
	return out
}

func TestPassThroughRelaysBytesBothWays(t *testing.T) {
	greeting := []byte("RFB 003.008\n")
	addr := echoTarget(t, greeting)
	tokens := map[string]string{"vm1": addr}
	rec := t.TempDir()
	h, err := New(Options{
		Lookup:    func(tok string) (string, bool) { s, ok := tokens[tok]; return s, ok },
		RecordDir: rec,
		Logger:    quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, h)
	for _, tc := range []struct {
		name, url string
		protos    []string
		want      string
	}{
		{"query binary", base + "/websockify?token=vm1", []string{"binary"}, "binary"},
		{"path none", base + "/websockify/vm1", nil, ""},
		{"base64 preferred binary", base + "/websockify?token=vm1", []string{"base64", "binary"}, "binary"},
		{"base64", base + "/websockify?token=vm1", []string{"base64"}, "base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := websocket.Dialer{Subprotocols: tc.protos}
			ws, _, err := d.Dial(tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			if ws.Subprotocol() != tc.want {
				t.Fatalf("subprotocol %q, want %q", ws.Subprotocol(), tc.want)
			}
			if got := readN(t, ws, len(greeting)); !bytes.Equal(got, greeting) {
				t.Fatalf("greeting %q", got)
			}
			payload := make([]byte, 200<<10)
			rand.Read(payload)
			go func() {
				for p := payload; len(p) > 0; {
					n := min(len(p), 7000)
					if tc.want == "base64" {
						ws.WriteMessage(websocket.TextMessage, []byte(base64.StdEncoding.EncodeToString(p[:n])))
					} else {
						ws.WriteMessage(websocket.BinaryMessage, p[:n])
					}
					p = p[n:]
				}
			}()
			if got := readN(t, ws, len(payload)); !bytes.Equal(got, payload) {
				t.Fatal("echoed bytes differ from those sent")
			}
		})
	}
	if got := h.Stats().Connections.Load(); got != 4 {
		t.Errorf("connections %d, want 4", got)
	}
	// The recordings are in websockify's format.
	h.Close()
	files, _ := filepath.Glob(filepath.Join(rec, "*"))
	if len(files) != 4 {
		t.Fatalf("%d recordings, want 4", len(files))
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.HasPrefix(s, "var VNC_frame_data = [\n'{") || !strings.Contains(s, "{RFB 003.008\\n',\n") || !strings.HasSuffix(s, "'EOF'];\n") {
		t.Fatalf("recording does not look like websockify's: %.200q", s)
	}
}

func TestRefusals(t *testing.T) {
	h, err := New(Options{
		Lookup: func(tok string) (string, bool) { return "127.0.0.1:1", tok == "ok" },
		Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, h)
	for _, tc := range []struct {
		name, url, origin string
	}{
		{"no token", base + "/websockify", ""},
		{"unknown token", base + "/websockify?token=nope", ""},
		{"foreign origin", base + "/websockify?token=ok", "http://evil.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := http.Header{}
			if tc.origin != "" {
				hdr.Set("Origin", tc.origin)
			}
			_, resp, err := websocket.DefaultDialer.Dial(tc.url, hdr)
			if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("dial: %v, response %v; want 403", err, resp)
			}
		})
	}
	// A reachable token with an unreachable target closes with a reason.
	ws, _, err := websocket.DefaultDialer.Dial(base+"/websockify?token=ok", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseInternalServerErr) {
		t.Fatalf("read: %v, want close 1011", err)
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": ModeAuto, "auto": ModeAuto, "passthrough": ModePassthrough, "reencode": ModeReencode, "Re-Encode": ModeReencode} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseMode("both"); err == nil {
		t.Error("ParseMode accepted nonsense")
	}
}

func TestAppendEscaped(t *testing.T) {
	got := string(appendEscaped(nil, []byte("a'\\\t\n\r\x00\x7f\xffz")))
	want := `a\'\\\t\n\r\x00\x7f\xffz`
	if got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// reencodeSetup serves fake consoles through a hub in re-encode mode.
func reencodeSetup(t *testing.T, password string) (*Handler, *sessiontest.Backend, string) {
	t.Helper()
	be := &sessiontest.Backend{W: 200, H: 120}
	hub := session.NewHub(session.Options{Open: be.Open, Logger: quiet})
	t.Cleanup(hub.Close)
	h, err := New(Options{
		Target:   "vnc://console.test:5900",
		Mode:     ModeReencode,
		Hub:      hub,
		Password: func(string) string { return password },
		Logger:   quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h, be, serve(t, h)
}

// dialRFBOverWS connects kvmgate's RFB client through the WebSocket.
func dialRFBOverWS(t *testing.T, ctx context.Context, url, password string) (*rfb.Client, *framebuffer.Framebuffer) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"binary"}}
	ws, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	last := new(atomic.Int64)
	nc := &wsConn{ws: ws, remote: remoteAddr("server"), stats: &Stats{}, last: last}
	opts := rfb.NewOptions()
	opts.Password = password
	opts.Encodings = []rfb.Encoding{rfb.EncodingTight, rfb.EncodingZRLE}
	opts.QualityLevel = 6
	cl, err := rfb.NewClient(ctx, nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	fb := framebuffer.New()
	done := make(chan error, 1)
	go func() { done <- cl.Run(ctx, fb) }()
	t.Cleanup(func() {
		cl.Close()
		<-done
	})
	return cl, fb
}

// waitEqual waits until fb equals want.
func waitEqual(t *testing.T, ctx context.Context, fb *framebuffer.Framebuffer, want *framebuffer.Canvas) {
	t.Helper()
	for {
		if got := fb.Snapshot(); got.Equal(want) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("viewer picture never matched the console's")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestReencodeSharesOneBackend connects three RFB clients through the
// WebSocket in re-encode mode: one backend connection serves them all,
// each sees the console's picture, and input reaches the console.
func TestReencodeSharesOneBackend(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, be, base := reencodeSetup(t, "s3cret")
	var fbs []*framebuffer.Framebuffer
	var cls []*rfb.Client
	for range 3 {
		cl, fb := dialRFBOverWS(t, ctx, base+"/websockify", "s3cret")
		cls, fbs = append(cls, cl), append(fbs, fb)
	}
	if be.Opens() != 1 {
		t.Fatalf("%d backend connections, want 1", be.Opens())
	}
	con := be.Last()
	con.Paint(ctx, func(c *framebuffer.Canvas, b *framebuffer.Batch) {
		r := framebuffer.Rect{X: 30, Y: 20, W: 50, H: 30}
		c.Fill(r, 0xff3366cc)
		b.Damage(r)
	})
	want := h.opts.Hub.List()
	if len(want) != 1 || want[0].Viewers != 3 {
		t.Fatalf("sessions %+v, want one with 3 viewers", want)
	}
	s := h.opts.Hub.Lookup(want[0].ID)
	for _, fb := range fbs {
		waitEqual(t, ctx, fb, s.Framebuffer().Snapshot())
	}
	if err := cls[1].Key(input.KeyEvent{Key: "a", Code: "KeyA", Down: true}); err != nil {
		t.Fatal(err)
	}
	for len(con.Keys()) == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("key never reached the console")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if got := con.Keys()[0]; got.Key != "a" || !got.Down {
		t.Fatalf("console got %+v", got)
	}
}

func TestReencodeWrongPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _, base := reencodeSetup(t, "right")
	d := websocket.Dialer{Subprotocols: []string{"binary"}}
	ws, _, err := d.Dial(base+"/websockify", nil)
	if err != nil {
		t.Fatal(err)
	}
	nc := &wsConn{ws: ws, remote: remoteAddr("server"), stats: &Stats{}, last: new(atomic.Int64)}
	opts := rfb.NewOptions()
	opts.Password = "wrong"
	if _, err := rfb.NewClient(ctx, nc, opts); err == nil || !strings.Contains(err.Error(), "auth") {
		t.Fatalf("NewClient with a wrong password: %v", err)
	}
}

// TestServeRFB serves a console to a native RFB client over TCP.
func TestServeRFB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, be, _ := reencodeSetup(t, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	sctx, scancel := context.WithCancel(ctx)
	go func() { done <- h.ServeRFB(sctx, ln, "vnc://console.test:5900") }()
	opts := rfb.NewOptions()
	cl, err := rfb.Dial(ctx, ln.Addr().String(), opts)
	if err != nil {
		t.Fatal(err)
	}
	fb := framebuffer.New()
	rdone := make(chan error, 1)
	go func() { rdone <- cl.Run(ctx, fb) }()
	s := h.opts.Hub.List()
	for len(s) == 0 {
		time.Sleep(10 * time.Millisecond)
		s = h.opts.Hub.List()
	}
	<-be.Last().Ready
	waitEqual(t, ctx, fb, h.opts.Hub.Lookup(s[0].ID).Framebuffer().Snapshot())
	scancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeRFB: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeRFB did not return after its context ended")
	}
	cl.Close()
	<-rdone
}

// TestHeartbeatAndIdleTimeout: pings arrive at the heartbeat period, and a
// connection that carries nothing is closed after the idle timeout.
func TestHeartbeatAndIdleTimeout(t *testing.T) {
	addr := echoTarget(t, nil)
	h, err := New(Options{Target: addr, Heartbeat: 20 * time.Millisecond, IdleTimeout: 300 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, h)
	ws, _, err := websocket.DefaultDialer.Dial(base+"/websockify", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var pings atomic.Int32
	ws.SetPingHandler(func(string) error {
		pings.Add(1)
		return nil
	})
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = ws.ReadMessage() // nothing comes but pings, then the close
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("read: %v; want the server to close the idle connection", err)
	}
	if pings.Load() == 0 {
		t.Error("no heartbeat ping arrived")
	}
}
