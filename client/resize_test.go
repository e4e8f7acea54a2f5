package client_test

import (
	"fmt"
	"testing"

	"kvmgate/framebuffer"
	"kvmgate/internal/browsertest"
)

// connectPage answers the page's WebSocket with hello (plus extra fields)
// and one frame, and waits for its ack. A resize message the page sends
// meanwhile is returned (nil if none).
func connectPage(t *testing.T, srv *protoServer, extra map[string]any) (*testConn, map[string]any) {
	t.Helper()
	c := srv.accept(t)
	h := hello(64, 48)
	for k, v := range extra {
		h[k] = v
	}
	c.sendJSON(h)
	want, _ := framebuffer.NewCanvas(0, 0)
	f := &frame{c: c, want: want}
	f.resize(64, 48)
	f.fill(want.Bounds(), 20, 30, 40)
	f.end(1)
	f.flush()
	var resize map[string]any
	for {
		m := c.next("ack", "resize")
		if m["t"] == "ack" {
			return c, resize
		}
		resize = m
	}
}

// nextResize returns early, if not nil, else the next resize message.
func nextResize(c *testConn, early map[string]any) map[string]any {
	if early != nil {
		return early
	}
	return c.next("resize")
}

// viewDeviceSize is the console view's size in device pixels.
func viewDeviceSize(t *testing.T, p *browsertest.Page) (w, h int) {
	t.Helper()
	var r struct{ W, H int }
	js := `(() => { const v = ` + el + `.view, d = devicePixelRatio; return {w: Math.floor(v.clientWidth * d), h: Math.floor(v.clientHeight * d)}; })()`
	if err := p.EvalInto(js, &r); err != nil {
		t.Fatal(err)
	}
	return r.W, r.H
}

func noErrors(t *testing.T, p *browsertest.Page) {
	t.Helper()
	if errs := p.Errors(); len(errs) != 0 {
		t.Errorf("page errors: %q", errs)
	}
}

func checkResize(t *testing.T, m map[string]any, w, h int) {
	t.Helper()
	if fmt.Sprint(m["w"], "x", m["h"]) != fmt.Sprint(w, "x", h) {
		t.Errorf("resize message %v, want %dx%d", m, w, h)
	}
}

// TestRemoteResize: with ?resize=remote and a console that can resize, the
// page asks for its view's size in device pixels, and again after the
// window changes size or the device pixel ratio changes; the toolbar's
// option follows the server's caps.
func TestRemoteResize(t *testing.T) {
	srv := newProtoServer(t)
	b := browsertest.Launch(t)
	p := b.NewPage(t, srv.URL+"/?resize=remote")
	p.SetViewport(t, 900, 700, 1)
	c, early := connectPage(t, srv, map[string]any{"resize": true})
	w, h := viewDeviceSize(t, p)
	if w < 800 || h < 500 {
		t.Fatalf("view %dx%d in a 900x700 window", w, h)
	}
	checkResize(t, nextResize(c, early), w, h)

	p.SetViewport(t, 700, 500, 2)
	p.WaitFor(t, `devicePixelRatio === 2`, wait)
	w2, h2 := viewDeviceSize(t, p)
	checkResize(t, c.next("resize"), w2, h2)
	if w2 == w {
		t.Errorf("view %dx%d device pixels both before and after the change", w2, h2)
	}
	p.WaitFor(t, el+`.toolbar?.$ && !`+el+`.toolbar.$('.resize-remote').disabled && `+el+`.toolbar.$('.resize-remote').checked`, wait)

	// The console loses the ability: no more requests, the option greys out.
	c.sendJSON(map[string]any{"t": "caps", "pointer": "absolute", "resize": false})
	p.WaitFor(t, el+`.toolbar.$('.resize-remote').disabled`, wait)
	p.SetViewport(t, 800, 600, 1)
	c.sendJSON(map[string]any{"t": "caps", "pointer": "absolute", "resize": true})
	w3, h3 := viewDeviceSize(t, p)
	checkResize(t, c.next("resize"), w3, h3)
	noErrors(t, p)
}

// TestRemoteResizeOffByDefault: without ?resize=remote the page sends no
// resize until the option is switched on.
func TestRemoteResizeOffByDefault(t *testing.T) {
	srv := newProtoServer(t)
	b := browsertest.Launch(t)
	p := b.NewPage(t, srv.URL+"/")
	c, early := connectPage(t, srv, map[string]any{"resize": true})
	if early != nil {
		t.Fatalf("page sent %v with the option off", early)
	}
	p.WaitFor(t, el+`.toolbar?.$ && !`+el+`.toolbar.$('.resize-remote').checked`, wait)
	// A refresh round trip: had the page sent resize on connect, it would
	// come before this.
	p.MustEval(t, el+`.refresh()`)
	if m := c.next("resize", "refresh"); m["t"] != "refresh" {
		t.Fatalf("page sent %v with the option off", m)
	}
	p.ClickElement(t, `kvm-console >>> .resize-remote`)
	w, h := viewDeviceSize(t, p)
	checkResize(t, c.next("resize"), w, h)
}

// TestCapsSwitchesPointerLock: a "caps" message changes the pointer kind
// without a reconnect: Pointer Lock is asked for on a click only while the
// console takes relative motion.
func TestCapsSwitchesPointerLock(t *testing.T) {
	srv := newProtoServer(t)
	b := browsertest.Launch(t)
	p := b.NewPage(t, srv.URL+"/")
	c, _ := connectPage(t, srv, map[string]any{"pointer": "absolute"})
	p.MustEval(t, el+`.canvas.requestPointerLock = () => { window.kvmgateLocks = (window.kvmgateLocks || 0) + 1; return Promise.resolve(); }`)
	click := func() int {
		var r struct{ Left, Top, Width, Height float64 }
		if err := p.EvalInto(`(() => { const r = `+el+`.canvas.getBoundingClientRect(); return {left: r.left, top: r.top, width: r.width, height: r.height}; })()`, &r); err != nil {
			t.Fatal(err)
		}
		x, y := r.Left+r.Width/2, r.Top+r.Height/2
		p.MouseDown(t, x, y, browsertest.Left)
		p.MouseUp(t, x, y, browsertest.Left)
		c.next("ptr")
		c.next("ptr")
		var n int
		if err := p.EvalInto(`window.kvmgateLocks || 0`, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := click(); n != 0 {
		t.Errorf("%d Pointer Lock requests with an absolute pointer", n)
	}
	c.sendJSON(map[string]any{"t": "caps", "pointer": "relative", "resize": false})
	p.WaitFor(t, el+`.hello.pointer === 'relative'`, wait)
	if n := click(); n != 1 {
		t.Errorf("%d Pointer Lock requests after caps said relative, want 1", n)
	}
	c.sendJSON(map[string]any{"t": "caps", "pointer": "absolute", "resize": false})
	p.WaitFor(t, el+`.hello.pointer === 'absolute'`, wait)
	if n := click(); n != 1 {
		t.Errorf("%d Pointer Lock requests after caps said absolute again, want still 1", n)
	}
	noErrors(t, p)
}
