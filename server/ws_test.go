package server_test

import (
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"kvmgate/framebuffer"
	"kvmgate/server"
)

func rc(x, y, w, h int) framebuffer.Rect { return framebuffer.Rect{X: x, Y: y, W: w, H: h} }

func noise(c *framebuffer.Canvas, r framebuffer.Rect, rng *rand.Rand) {
	for y := r.Y; y < r.Y+r.H; y++ {
		row := c.Row(r.X, y, r.W)
		for i := 0; i < len(row); i += 4 {
			v := rng.Uint32()
			row[i], row[i+1], row[i+2], row[i+3] = byte(v), byte(v>>8), byte(v>>16), 0xff
		}
	}
}

// TestWireRecordsDecodeToFramebuffer is the core check of the wire: after
// every backend update, the records a viewer receives decode to exactly the
// framebuffer's pixels.
func TestWireRecordsDecodeToFramebuffer(t *testing.T) {
	e := newEnv(t, server.Options{Target: "vnc://fake:1"}, 640, 400)
	c := e.connect("")
	if c.hello["v"] != 1.0 || c.hello["protocol"] != "fake" || c.hello["width"] != 640.0 || c.hello["height"] != 400.0 {
		t.Fatalf("hello %v", c.hello)
	}
	if combos, _ := c.hello["combos"].([]any); len(combos) == 0 {
		t.Errorf("hello has no combos: %v", c.hello)
	}
	if tk, _ := c.hello["ticket"].(string); tk == "" {
		t.Errorf("hello has no ticket")
	}
	if st := c.waitJSON("status"); st["state"] != "connected" {
		t.Fatalf("status %v", st)
	}
	c.converge(e.snapshot())
	if c.dec.Records[0x10] != 1 {
		t.Fatalf("records %v: want one resize", c.dec.Records)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	steps := []struct {
		name string
		fn   func(cv *framebuffer.Canvas, b *framebuffer.Batch)
	}{
		{"fill", func(cv *framebuffer.Canvas, b *framebuffer.Batch) {
			cv.Fill(rc(10, 10, 100, 50), 0xff00ff00)
			b.Damage(rc(10, 10, 100, 50))
		}},
		{"noise unaligned", func(cv *framebuffer.Canvas, b *framebuffer.Batch) {
			noise(cv, rc(33, 77, 150, 91), rng)
			b.Damage(rc(33, 77, 150, 91))
		}},
		{"scroll up", func(cv *framebuffer.Canvas, b *framebuffer.Batch) {
			src := rc(0, 16, 640, 384)
			cv.Move(src, 0, 0)
			b.Move(src, 0, 0)
			cv.Fill(rc(0, 384, 640, 16), 0xff202020)
			b.Damage(rc(0, 384, 640, 16))
		}},
		{"overlapping move down", func(cv *framebuffer.Canvas, b *framebuffer.Batch) {
			src := rc(5, 5, 200, 200)
			cv.Move(src, 20, 30)
			b.Move(src, 20, 30)
		}},
		{"many small rects", func(cv *framebuffer.Canvas, b *framebuffer.Batch) {
			for range 50 {
				r := rc(rng.IntN(600), rng.IntN(380), 1+rng.IntN(40), 1+rng.IntN(20))
				cv.Fill(r, rng.Uint32()|0xff000000)
				b.Damage(r)
			}
		}},
		{"full screen noise", func(cv *framebuffer.Canvas, b *framebuffer.Batch) {
			noise(cv, cv.Bounds(), rng)
			b.Damage(cv.Bounds())
		}},
	}
	for _, st := range steps {
		want := e.paint(c, st.fn)
		c.converge(want)
	}
	if c.dec.Records[0x15] == 0 {
		t.Errorf("no copy records for moves: %v", c.dec.Records)
	}
	// A refresh request yields a full frame that still matches.
	c.send(map[string]any{"t": "refresh"})
	c.converge(e.snapshot())
}

func TestLossyThenRefinedToLossless(t *testing.T) {
	e := newEnv(t, server.Options{Target: "vnc://fake:1"}, 512, 256)
	c := e.connect("")
	c.converge(e.snapshot())
	c.send(map[string]any{"t": "quality", "mode": "low"})
	// Wait until the mode applies: stats report its quality (before the
	// first ack auto mode is lossy too, encoders/ratectl's ProbeQuality).
	for {
		if m := c.waitJSON("stats"); m["quality"] == 40.0 {
			break
		}
	}
	want := e.paint(c, func(cv *framebuffer.Canvas, b *framebuffer.Batch) {
		// Smooth photo-like content: many colours, no repeats.
		for y := 0; y < cv.H; y++ {
			row := cv.Row(0, y, cv.W)
			for x := 0; x < cv.W; x++ {
				row[4*x], row[4*x+1], row[4*x+2] = byte(x+y*3), byte(x*2-y), byte(x*y/7)
			}
		}
		b.Damage(cv.Bounds())
	})
	// The picture arrives lossy, then is refined to exact.
	c.converge(want)
	if c.dec.Records[0x13] == 0 {
		t.Fatalf("no JPEG records in low quality mode: %v", c.dec.Records)
	}
}

func TestTwoViewersShareBackend(t *testing.T) {
	e := newEnv(t, server.Options{Target: "vnc://fake:1"}, 320, 200)
	a := e.connect("")
	b := e.connect("")
	a.converge(e.snapshot())
	b.converge(e.snapshot())
	want := e.paint(a, func(cv *framebuffer.Canvas, bt *framebuffer.Batch) {
		cv.Fill(rc(0, 0, 50, 50), 0xff0000ff)
		bt.Damage(rc(0, 0, 50, 50))
	})
	a.converge(want)
	b.converge(want)
	if n := e.backend.Opens(); n != 1 {
		t.Fatalf("backend opened %d times, want 1", n)
	}
	// The stalled viewer may by now have been dropped by its write deadline
	// (on a slow machine the batches outlast it); the session itself and
	// the fast viewer must carry on either way.
	if l := e.srv.Hub().List(); len(l) != 1 || l[0].Viewers < 1 || l[0].Viewers > 2 {
		t.Fatalf("sessions %+v", l)
	}
	// A tab that reconnects gets a full frame.
	a.conn.Close()
	a2 := e.connect("")
	a2.converge(want)
	if a2.dec.Records[0x10] != 1 {
		t.Fatal("reconnected viewer got no resize/full frame")
	}
	if n := e.backend.Opens(); n != 1 {
		t.Fatalf("backend opened %d times after a tab reconnect, want 1", n)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestSlowViewer checks that a viewer which neither reads nor acks never
// delays another viewer and costs bounded memory.
func TestSlowViewer(t *testing.T) {
	e := newEnv(t, server.Options{Target: "vnc://fake:1"}, 1600, 1200)
	fast := e.connect("")
	fast.converge(e.snapshot())
	// The slow viewer reads nothing after the handshake.
	slow, _, err := e.dial("", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	// Make every frame big enough to fill socket buffers.
	e.paint(fast, func(cv *framebuffer.Canvas, b *framebuffer.Batch) {
		noise(cv, cv.Bounds(), rng)
		b.Damage(cv.Bounds())
	})
	before := heapInUse()
	// 2000 updates in batches; after each batch the fast viewer must reach
	// the current picture, which it could not if the stalled viewer held
	// anything up.
	con := e.backend.Last()
	framesBefore := fast.frames
	for batch := range 20 {
		for i := range 100 {
			con.Paint(t.Context(), func(cv *framebuffer.Canvas, b *framebuffer.Batch) {
				r := rc(rng.IntN(cv.W-24), rng.IntN(cv.H-24), 24, 24)
				cv.Fill(r, uint32(batch*100+i)|0xff000000)
				b.Damage(r)
			})
		}
		fast.converge(e.snapshot())
	}
	if fast.frames < framesBefore+20 {
		t.Fatalf("fast viewer got %d frames for 20 batches", fast.frames-framesBefore)
	}
	after := heapInUse()
	if after > before+32<<20 {
		t.Fatalf("heap grew from %d to %d bytes with a stalled viewer", before, after)
	}
	// The stalled viewer may by now have been dropped by its write deadline
	// (on a slow machine the batches outlast it); the session itself and
	// the fast viewer must carry on either way.
	if l := e.srv.Hub().List(); len(l) != 1 || l[0].Viewers < 1 || l[0].Viewers > 2 {
		t.Fatalf("sessions %+v", l)
	}
}

func TestBadInputClosesOnlyThatViewer(t *testing.T) {
	cases := []struct {
		name string
		typ  int
		data []byte
		code int
	}{
		{"malformed JSON", websocket.TextMessage, []byte(`{"t":"key",`), websocket.ClosePolicyViolation},
		{"not an object", websocket.TextMessage, []byte(`[1,2,3]`), websocket.ClosePolicyViolation},
		{"wrong field type", websocket.TextMessage, []byte(`{"t":"ptr","x":"left"}`), websocket.ClosePolicyViolation},
		{"unknown type", websocket.TextMessage, []byte(`{"t":"format-disk"}`), websocket.ClosePolicyViolation},
		{"no type", websocket.TextMessage, []byte(`{}`), websocket.ClosePolicyViolation},
		{"binary", websocket.BinaryMessage, []byte{1, 2, 3}, websocket.ClosePolicyViolation},
		{"huge", websocket.TextMessage, []byte(`{"t":"clipboard","text":"` + strings.Repeat("x", server.MaxClientMessage) + `"}`), websocket.CloseMessageTooBig},
	}
	e := newEnv(t, server.Options{Target: "vnc://fake:1"}, 320, 200)
	good := e.connect("")
	good.converge(e.snapshot())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := e.connect("")
			bad.t = t
			bad.converge(e.snapshot())
			if err := bad.conn.WriteMessage(tc.typ, tc.data); err != nil {
				t.Fatal(err)
			}
			msg := bad.waitJSON("error")
			if msg["fatal"] != true || msg["message"] == "" {
				t.Fatalf("error message %v, want fatal with a message", msg)
			}
			if ce := bad.waitClose(); ce.Code != tc.code {
				t.Fatalf("close code %d (%q), want %d", ce.Code, ce.Text, tc.code)
			}
			// The session and the other viewer carry on.
			want := e.paint(good, func(cv *framebuffer.Canvas, b *framebuffer.Batch) {
				r := rc(rand.IntN(300), rand.IntN(180), 20, 20)
				cv.Fill(r, rand.Uint32()|0xff000000)
				b.Damage(r)
			})
			good.converge(want)
		})
	}
	if n := e.backend.Opens(); n != 1 {
		t.Fatalf("backend opened %d times, want 1", n)
	}
}

func TestRefusedBeforeUpgrade(t *testing.T) {
	tokens := t.TempDir() + "/tokens"
	writeFile(t, tokens, "vm1: fake:1\n")
	e := newEnv(t, server.Options{TokenPath: tokens, TicketTTL: time.Minute}, 320, 200)
	other := server.NewTickets(nil, time.Minute)
	forged, _ := other.Issue("vnc://fake:1")
	good, _ := e.srv.Tickets().Issue("vnc://fake:1")
	tampered := []byte(good)
	tampered[3] ^= 1
	expiredSigner := server.NewTickets([]byte("k"), time.Minute)
	cases := []struct {
		name   string
		query  string
		origin string
		reason string
	}{
		{"unknown token", "token=nope", "", "unknown token"},
		{"no credentials", "", "", "token or ticket is required"},
		{"garbage ticket", "ticket=abc", "", "malformed ticket"},
		{"forged ticket", "ticket=" + url.QueryEscape(forged), "", "signature"},
		{"tampered ticket", "ticket=" + url.QueryEscape(string(tampered)), "", "ticket"},
		{"expired ticket", "ticket=" + url.QueryEscape(expired(t, expiredSigner)), "", ""},
		{"foreign origin", "token=vm1", "https://evil.example", "origin not allowed"},
	}
	// A viewer already connected is not disturbed by the refusals.
	v := e.connect("token=vm1")
	v.converge(e.snapshot())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			conn, resp, err := e.dial(tc.query, h)
			if err == nil {
				conn.Close()
				t.Fatal("connection accepted")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("response %v, want 403", resp)
			}
			if b := body(t, resp); !strings.Contains(b, tc.reason) {
				t.Fatalf("reason %q does not mention %q", b, tc.reason)
			}
		})
	}
	// Same-origin and ticket connections work.
	h := http.Header{}
	h.Set("Origin", e.ts.URL)
	conn, resp, err := e.dial("ticket="+url.QueryEscape(good), h)
	if err != nil {
		t.Fatalf("good ticket refused: %v %s", err, body(t, resp))
	}
	conn.Close()
	want := e.paint(v, func(cv *framebuffer.Canvas, b *framebuffer.Batch) {
		cv.Fill(rc(1, 1, 5, 5), 0xffffffff)
		b.Damage(rc(1, 1, 5, 5))
	})
	v.converge(want)
}

func TestSubprotocolRequired(t *testing.T) {
	e := newEnv(t, server.Options{Target: "vnc://fake:1"}, 320, 200)
	conn, _, err := websocket.DefaultDialer.Dial(e.wsURL(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	_, _, err = conn.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseProtocolError) {
		t.Fatalf("got %v, want close 1002", err)
	}
}

func TestInputReachesBackend(t *testing.T) {
	e := newEnv(t, server.Options{Target: "vnc://fake:1"}, 320, 200)
	c := e.connect("")
	c.converge(e.snapshot())
	c.send(map[string]any{"t": "key", "code": "KeyA", "key": "a", "down": true})
	c.send(map[string]any{"t": "key", "code": "KeyA", "key": "a", "down": false})
	c.send(map[string]any{"t": "ptr", "x": 10.6, "y": 5000, "b": 1})
	c.send(map[string]any{"t": "wheel", "x": 10, "y": 20, "dx": 0, "dy": 3})
	c.send(map[string]any{"t": "clipboard", "text": "héllo"})
	c.send(map[string]any{"t": "type", "text": "ok"})
	c.send(map[string]any{"t": "combo", "name": "ctrl-alt-del"})
	c.send(map[string]any{"t": "action", "name": "reboot"})
	// The fake refuses actions; the viewer hears about it without closing.
	if m := c.waitJSON("error"); m["fatal"] == true {
		t.Fatalf("unsupported action was fatal: %v", m)
	}
	con := e.backend.Last()
	deadline := time.Now().Add(wait)
	for len(con.Keys()) < 2+4+6 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	keys := con.Keys()
	if len(keys) < 2 || keys[0].Code != "KeyA" || !keys[0].Down || keys[1].Down {
		t.Fatalf("keys %v", keys)
	}
	p := con.Pointers()
	if len(p) != 2 || p[0].X != 11 || p[0].Y != 199 || p[0].Buttons != 1 || p[1].WheelY != 3 || p[1].Buttons != 1 {
		t.Fatalf("pointers %+v", p)
	}
	if con.ClipboardText() != "héllo" {
		t.Fatalf("clipboard %q", con.ClipboardText())
	}
}

func TestSessionEndClosesViewers(t *testing.T) {
	e := newEnv(t, server.Options{Target: "vnc://fake:1"}, 320, 200)
	c := e.connect("")
	c.converge(e.snapshot())
	e.srv.Hub().End(e.srv.Hub().List()[0].ID)
	for {
		m := c.waitJSON("status")
		if m["state"] == "ended" {
			break
		}
		if m["state"] != "connected" {
			t.Fatalf("status %v", m)
		}
	}
	if ce := c.waitClose(); ce.Code != websocket.CloseNormalClosure {
		t.Fatalf("close %v", ce)
	}
}
