package e2e

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"math"
	"strings"
	"testing"
	"time"

	"kvmgate/internal/browsertest"
	"kvmgate/internal/testserver"
	"kvmgate/internal/testserver/guestcursor"
	"kvmgate/server"
)

// TestSPICEBrowserRelativeCursor serves the Linux guest on the qxl KMS
// console without a tablet (SPICE server mouse mode: the hello says the
// pointer is relative) to the console page in headless Chromium. The guest
// sets a hardware cursor through DRM and moves it: the page draws the
// guest's cursor image as its overlay, scaled with the screen, with the
// guest's hotspot at the position the guest gave it, and follows a second
// move; the canvas stays equal to QEMU's screendump.
func TestSPICEBrowserRelativeCursor(t *testing.T) {
	t.Parallel()
	b := browsertest.Launch(t)
	q := startInputGuest(t) // the input guest of TestSPICEBrowserCursorAndPointer (one cached snapshot)
	_, hs := startServer(t, server.Options{Target: "spice://" + q.SPICEAddr()})
	p := b.NewPage(t, hs.URL+"/")
	waitConnected(t, p)
	p.WaitFor(t, el+`.hello && `+el+`.hello.pointer === "relative"`, wait)
	waitScreen(t, p, q)

	img := el + `.shadowRoot.querySelector('img.cursor')`
	// overlayAt waits until the overlay's top left corner is where the
	// guest put its cursor's (x, y framebuffer pixels).
	overlayAt := func(x, y int) {
		t.Helper()
		type geom struct{ CL, CT, CW, CH, W, H, L, T, IW, IH float64 }
		var g geom
		deadline := time.Now().Add(wait)
		for {
			err := p.EvalInto(`(() => { const c = `+el+`.canvas, r = c.getBoundingClientRect(), i = `+img+`;
				if (!i || i.hidden || !i.complete) return null;
				const o = i.getBoundingClientRect();
				return {CL: r.left, CT: r.top, CW: r.width, CH: r.height, W: c.width, H: c.height, L: o.left, T: o.top, IW: o.width, IH: o.height}; })()`, &g)
			if err == nil && g.W > 0 {
				kx, ky := g.CW/g.W, g.CH/g.H
				if math.Abs(g.L-(g.CL+float64(x)*kx)) <= 1 && math.Abs(g.T-(g.CT+float64(y)*ky)) <= 1 &&
					math.Abs(g.IW-guestcursor.W*kx) <= 1 && math.Abs(g.IH-guestcursor.H*ky) <= 1 {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no overlay with its corner at framebuffer %d,%d: %+v (err %v)", x, y, g, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	q.TypeText(t, testserver.GuestProgramName+" cursor &\n")
	q.WaitSerial(t, "KVMGATE-CURSOR-SET", time.Minute)
	overlayAt(100, 80) // the guest program's first position
	var src string
	if err := p.EvalInto(img+`.src`, &src); err != nil {
		t.Fatal(err)
	}
	data, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(src, "data:image/png;base64,"))
	if err != nil {
		t.Fatalf("overlay data URL: %v", err)
	}
	pic, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("overlay PNG: %v", err)
	}
	if d := cursorImageMismatch(pic); d != "" {
		t.Error(d)
	}
	var css string
	if err := p.EvalInto(el+`.canvas.style.cursor`, &css); err != nil || css != "default" {
		t.Errorf("CSS cursor %.40q (%v), want default while the overlay shows the cursor", css, err)
	}

	q.TypeText(t, "echo 300 200 >/tmp/kvmgate-cursor\n")
	q.WaitSerial(t, "KVMGATE-CURSOR-MOVED 300 200", time.Minute)
	overlayAt(300, 200)
	q.WaitSettled(t, time.Minute)
	waitScreen(t, p, q)
	noErrors(t, p)
}
