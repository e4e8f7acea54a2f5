package e2e

import (
	"fmt"
	"testing"
	"time"

	"kvmgate/internal/browsertest"
	"kvmgate/internal/testserver"
)

// waitScreen waits until the page's canvas equals the backend server's own
// screenshot (QEMU's screendump, xwd), pixel for pixel, and fails with the
// differences otherwise. The screen must be still; a blinking text cursor
// only delays the match until both sides show the same phase.
func waitScreen(t *testing.T, p *browsertest.Page, srv testserver.Screen) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		want, err := srv.Screenshot()
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.CanvasPixels("kvm-console")
		if err != nil {
			t.Fatal(err)
		}
		diff := compare(got, want)
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the browser's canvas differs from the server's screenshot after %v: %s", wait, diff)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// framesDrawn returns how many frames the page's console has drawn.
func framesDrawn(t *testing.T, p *browsertest.Page) int {
	t.Helper()
	var n int
	if err := p.EvalInto(el+`.stats().framesDrawn`, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// clickCtrlAltDel opens the toolbar's special-keys menu and clicks its
// Ctrl-Alt-Del entry, as a user would.
func clickCtrlAltDel(t *testing.T, p *browsertest.Page) {
	t.Helper()
	p.WaitFor(t, el+`.shadowRoot.querySelector('#keys-menu button[data-name="ctrl-alt-del"]')`, wait)
	p.ClickElement(t, "kvm-console >>> button.keys")
	p.ClickElement(t, `kvm-console >>> #keys-menu button[data-name="ctrl-alt-del"]`)
}

// canvasPoint returns the viewport coordinates (CSS pixels) of the centre of
// framebuffer pixel fx, fy on the page's console canvas, however it is
// scaled.
func canvasPoint(t *testing.T, p *browsertest.Page, fx, fy int) (x, y float64) {
	t.Helper()
	var r struct{ X, Y float64 }
	js := fmt.Sprintf(`(() => {
	const c = %s.canvas, b = c.getBoundingClientRect();
	return {x: b.left + (%d + 0.5) * b.width / c.width, y: b.top + (%d + 0.5) * b.height / c.height};
})()`, el, fx, fy)
	if err := p.EvalInto(js, &r); err != nil {
		t.Fatal(err)
	}
	return r.X, r.Y
}

// qemuKeyGap is the pause between characters typed into a QEMU guest from
// the page: under TCG on a busy machine the guest's PS/2 queue can overflow
// when keys arrive back to back.
const qemuKeyGap = 15 * time.Millisecond
