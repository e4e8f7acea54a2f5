package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"kvmgate/encoders/tiles/tilestest"
	"kvmgate/internal/browsertest"
	"kvmgate/internal/testserver"
	"kvmgate/server"
)

// wsViewer is a minimal Go viewer: it decodes and acks frames and keeps
// the JSON messages.
type wsViewer struct {
	t    *testing.T
	conn *websocket.Conn
	dec  *tilestest.Decoder
}

func dialViewer(t *testing.T, url string) (*wsViewer, map[string]any) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{server.Subprotocol}, HandshakeTimeout: wait}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(url, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	v := &wsViewer{t: t, conn: conn, dec: tilestest.NewDecoder()}
	return v, v.next()
}

// next applies binary messages until a JSON message arrives, and returns it.
func (v *wsViewer) next() map[string]any {
	v.t.Helper()
	for {
		_ = v.conn.SetReadDeadline(time.Now().Add(wait))
		typ, data, err := v.conn.ReadMessage()
		if err != nil {
			v.t.Fatalf("read: %v", err)
		}
		if typ == websocket.TextMessage {
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				v.t.Fatal(err)
			}
			return m
		}
		n, err := v.dec.Apply(data)
		if err != nil {
			v.t.Fatal(err)
		}
		if n > 0 {
			if err := v.conn.WriteJSON(map[string]any{"t": "ack", "f": v.dec.LastFrame}); err != nil {
				v.t.Fatal(err)
			}
		}
	}
}

// waitXSize waits until Xvnc's screen is w×h.
func waitXSize(t *testing.T, x *testserver.X, w, h int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		gw, gh, err := x.Size()
		if err != nil {
			t.Fatal(err)
		}
		if gw == w && gh == h {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Xvnc's screen is %dx%d, want %dx%d", gw, gh, w, h)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestXvncRemoteResize resizes TigerVNC's Xvnc (which supports
// SetDesktopSize) from a viewer: first with a "resize" message from a Go
// viewer, then from the console page with ?resize=remote, whose canvas
// then has the window's size in device pixels and shows Xvnc's screen.
func TestXvncRemoteResize(t *testing.T) {
	t.Parallel()
	x := testserver.StartXvnc(t, testserver.XvncOptions{Width: 800, Height: 600})
	x.Run(t, "xsetroot", "-solid", "#406020")
	srv, hs := startServer(t, server.Options{Target: "vnc://" + x.Addr()})

	t.Run("resize message", func(t *testing.T) {
		v, hello := dialViewer(t, hs.URL)
		// The server learns that Xvnc can resize from its first update.
		for can := hello["resize"] == true; !can; {
			m := v.next()
			can = m["t"] == "caps" && m["resize"] == true
		}
		if err := v.conn.WriteJSON(map[string]any{"t": "resize", "w": 1024, "h": 700}); err != nil {
			t.Fatal(err)
		}
		waitXSize(t, x, 1024, 700)
		deadline := time.Now().Add(wait)
		for w, h := onlySession(t, srv.Hub()).Framebuffer().Size(); w != 1024 || h != 700; w, h = onlySession(t, srv.Hub()).Framebuffer().Size() {
			if time.Now().After(deadline) {
				t.Fatalf("the session's framebuffer is %dx%d, want 1024x700", w, h)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("page", func(t *testing.T) {
		b := browsertest.Launch(t)
		p := b.NewPage(t, hs.URL+"/?resize=remote")
		p.SetViewport(t, 900, 640, 1)
		waitConnected(t, p)
		var view struct{ W, H int }
		if err := p.EvalInto(`({w: `+el+`.view.clientWidth, h: `+el+`.view.clientHeight})`, &view); err != nil {
			t.Fatal(err)
		}
		if view.W != 900 || view.H < 500 || view.H >= 640 {
			t.Fatalf("view %dx%d in a 900x640 window with a toolbar", view.W, view.H)
		}
		waitXSize(t, x, view.W, view.H)
		p.WaitFor(t, fmt.Sprintf(`%s.canvas.width === %d && %s.canvas.height === %d`, el, view.W, el, view.H), wait)
		waitScreen(t, p, x)
		noErrors(t, p)
	})
}
