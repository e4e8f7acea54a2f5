package client_test

import (
	"testing"

	"kvmgate/framebuffer"
	"kvmgate/internal/browsertest"
)

// TestRelativePointerLock checks that the page captures the pointer with
// Pointer Lock on a click when the hello says the console takes relative
// motion only (a SPICE VM in server mouse mode), and not when it takes
// absolute positions. (requestPointerLock is counted, not performed:
// headless Chromium has no pointer to lock.)
func TestRelativePointerLock(t *testing.T) {
	srv := newProtoServer(t)
	b := browsertest.Launch(t)
	p := b.NewPage(t, srv.URL+"/")
	const W, H = 64, 48
	locks := func() int {
		var n int
		if err := p.EvalInto(`window.kvmgateLocks || 0`, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	click := func(c *testConn) {
		var r struct{ Left, Top, Width, Height float64 }
		if err := p.EvalInto(`(() => { const r = `+el+`.canvas.getBoundingClientRect(); return {left: r.left, top: r.top, width: r.width, height: r.height}; })()`, &r); err != nil {
			t.Fatal(err)
		}
		x, y := r.Left+r.Width/2, r.Top+r.Height/2
		p.MouseDown(t, x, y, browsertest.Left)
		p.MouseUp(t, x, y, browsertest.Left)
		c.next("ptr")
		c.next("ptr")
	}
	for i, tc := range []struct {
		pointer string
		locks   int
	}{{"relative", 1}, {"absolute", 1}, {"", 1}, {"relative", 2}} {
		c := srv.accept(t)
		h := hello(W, H)
		if tc.pointer != "" {
			h["pointer"] = tc.pointer
		}
		c.sendJSON(h)
		want, _ := framebuffer.NewCanvas(0, 0)
		f := &frame{c: c, want: want}
		f.resize(W, H)
		f.fill(want.Bounds(), 20, 30, 40)
		f.end(1)
		f.flush()
		c.next("ack")
		p.MustEval(t, el+`.canvas.requestPointerLock = () => { window.kvmgateLocks = (window.kvmgateLocks || 0) + 1; return Promise.resolve(); }`)
		click(c)
		if n := locks(); n != tc.locks {
			t.Errorf("pointer %q: %d Pointer Lock requests after a click, want %d", tc.pointer, n, tc.locks)
		}
		if i < 3 {
			c.ws.Close() // the page reconnects: the next hello
		}
	}
}
