package client_test

import (
	"bytes"
	"fmt"
	"image/png"
	"math"
	"testing"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/internal/browsertest"
)

// TestCursorOverlay checks that with a relative pointer the page draws the
// console's cursor as an overlay at the position of `cursorpos`, hotspot
// included and scaled with the screen (found in a screenshot), keeps the
// CSS cursor plain, hides the overlay when the backend hides its cursor,
// and shows no overlay with an absolute pointer.
func TestCursorOverlay(t *testing.T) {
	srv := newProtoServer(t)
	b := browsertest.Launch(t)
	p := b.NewPage(t, srv.URL+"/")
	const W, H = 64, 48
	const hx, hy, cw, ch = 1, 2, 8, 8
	open := func(pointer string) *testConn {
		c := srv.accept(t)
		h := hello(W, H)
		h["pointer"] = pointer
		c.sendJSON(h)
		want, _ := framebuffer.NewCanvas(0, 0)
		f := &frame{c: c, want: want}
		f.resize(W, H)
		f.fill(want.Bounds(), 20, 30, 40)
		// An opaque red cursor.
		f.m.u8(0x16)
		f.m.u16(cw, ch, hx, hy)
		for range cw * ch {
			f.m.u8(255, 0, 0, 255)
		}
		f.end(1)
		f.flush()
		c.next("ack")
		return c
	}
	const visible = el + `.shadowRoot.querySelector('img.cursor')?.hidden === false`

	c := open("relative")
	c.sendJSON(map[string]any{"t": "cursorpos", "x": 20, "y": 10})
	p.WaitFor(t, visible+` && `+el+`.shadowRoot.querySelector('img.cursor').complete`, wait)
	var g struct {
		CL, CT, CW, ImgL, ImgT, ImgW, ImgH float64
		Cursor                             string
	}
	if err := p.EvalInto(`(() => { const c = `+el+`.canvas.getBoundingClientRect(), i = `+el+
		`.shadowRoot.querySelector('img.cursor').getBoundingClientRect();
		return {CL: c.left, CT: c.top, CW: c.width, ImgL: i.left, ImgT: i.top, ImgW: i.width, ImgH: i.height,
			Cursor: `+el+`.canvas.style.cursor}; })()`, &g); err != nil {
		t.Fatal(err)
	}
	k := g.CW / W
	wantL, wantT := g.CL+(20-hx)*k, g.CT+(10-hy)*k
	if math.Abs(g.ImgL-wantL) > 1 || math.Abs(g.ImgT-wantT) > 1 || math.Abs(g.ImgW-cw*k) > 1 || math.Abs(g.ImgH-ch*k) > 1 {
		t.Errorf("overlay at %.1f,%.1f size %.1fx%.1f; want %.1f,%.1f size %.1fx%.1f (screen scale %.2f)",
			g.ImgL, g.ImgT, g.ImgW, g.ImgH, wantL, wantT, cw*k, ch*k, k)
	}
	if g.Cursor != "default" {
		t.Errorf("CSS cursor %.40q with a relative pointer, want default", g.Cursor)
	}
	// The screenshot shows red inside the cursor and the screen's colour
	// just left of it.
	shot, err := p.Screenshot()
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatal(err)
	}
	at := func(x, y float64) string {
		r, g, b, _ := img.At(int(x), int(y)).RGBA()
		return fmt.Sprintf("%d,%d,%d", r>>8, g>>8, b>>8)
	}
	if got := at(wantL+cw*k/2, wantT+ch*k/2); got != "255,0,0" {
		t.Errorf("screenshot inside the cursor: %s, want 255,0,0", got)
	}
	if got := at(wantL-2*k, wantT+ch*k/2); got != "20,30,40" {
		t.Errorf("screenshot left of the cursor: %s, want the screen's 20,30,40", got)
	}

	// The backend hides its cursor: w = h = 0.
	c.sendBinary([]byte{0x16, 0, 0, 0, 0, 0, 0, 0, 0, 0x17, 2, 0, 0, 0, 0, 0, 0, 0})
	c.next("ack")
	p.WaitFor(t, `!(`+visible+`)`, wait)

	// Absolute pointer: the CSS cursor does the job, no overlay.
	c.ws.Close()
	c = open("absolute")
	c.sendJSON(map[string]any{"t": "cursorpos", "x": 30, "y": 30})
	p.WaitFor(t, el+`.canvas.style.cursor.startsWith('url(')`, wait)
	time.Sleep(100 * time.Millisecond) // let a wrongly shown overlay show
	var shown bool
	if err := p.EvalInto(visible, &shown); err != nil || shown {
		t.Errorf("overlay shown with an absolute pointer (%v)", err)
	}
}
