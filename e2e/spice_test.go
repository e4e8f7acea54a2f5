package e2e

import (
	"net"
	"strconv"
	"testing"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/internal/browsertest"
	"kvmgate/internal/testserver"
	"kvmgate/server"
	_ "kvmgate/spice" // spice:// targets
)

// spiceQEMU starts a SeaBIOS machine with a QXL card and a SPICE server on a
// free loopback port (no ticket), with further QEMU arguments, and returns
// it with its spice:// target.
func spiceQEMU(t *testing.T, extra ...string) (*testserver.QEMU, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	args := append([]string{"-spice", "port=" + strconv.Itoa(port) + ",addr=127.0.0.1,disable-ticketing=on"}, extra...)
	q := testserver.StartQEMU(t, testserver.QEMUOptions{VGA: "qxl", ExtraArgs: args})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(wait)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return q, "spice://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("SPICE port %s never opened: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// screenChange returns the bounds of what differs between a and b.
func screenChange(a, b *framebuffer.Canvas) framebuffer.Rect {
	var r framebuffer.Rect
	for y := 0; y < a.H; y++ {
		for x := 0; x < a.W; x++ {
			if a.At(x, y)&0xffffff != b.At(x, y)&0xffffff {
				r = r.Union(framebuffer.Rect{X: x, Y: y, W: 1, H: 1})
			}
		}
	}
	return r
}

// stillScreen waits until QEMU's screen stays the same (but for the
// blinking cursor's cell) for a second and is not black, and returns it.
func stillScreen(t *testing.T, q *testserver.QEMU) *framebuffer.Canvas {
	t.Helper()
	deadline := time.Now().Add(2 * wait)
	var prev *framebuffer.Canvas
	since := time.Now()
	for {
		c, err := q.Screenshot()
		if err != nil {
			t.Fatal(err)
		}
		changed := prev == nil || c.W != prev.W || c.H != prev.H
		if !changed {
			if d := screenChange(prev, c); d.W > 9 || d.H > 16 {
				changed = true
			}
		}
		if changed || screenChange(c, blackCanvas(c.W, c.H)).Empty() {
			prev, since = c, time.Now()
		} else if time.Since(since) > time.Second {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatal("QEMU's screen never settled")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func blackCanvas(w, h int) *framebuffer.Canvas {
	c, _ := framebuffer.NewCanvas(w, h)
	c.Fill(c.Bounds(), 0xff000000)
	return c
}

// TestSPICEBrowser serves a QEMU SeaBIOS machine's SPICE display (QXL)
// through kvmgate's spice:// backend to the console page in headless
// Chromium: the canvas equals QEMU's screendump, and Esc typed in the page
// opens SeaBIOS's boot menu, which the canvas then shows.
func TestSPICEBrowser(t *testing.T) {
	t.Parallel()
	b := browsertest.Launch(t)
	// The boot menu prompt stays a minute, far longer than the test
	// needs, so the change after Esc is Esc's doing.
	q, target := spiceQEMU(t, "-boot", "menu=on,splash-time=60000")
	_, hs := startServer(t, server.Options{Target: target})
	p := b.NewPage(t, hs.URL+"/")
	waitConnected(t, p)

	prompt := stillScreen(t, q)
	waitScreen(t, p, q)

	p.MustEval(t, el+`.focus()`)
	p.KeyPress(t, "Escape")
	deadline := time.Now().Add(wait)
	for {
		c, err := q.Screenshot()
		if err != nil {
			t.Fatal(err)
		}
		if c.W == prompt.W && c.H == prompt.H {
			if d := screenChange(prompt, c); d.H > 16 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("Esc typed in the browser did not change the guest's screen")
		}
		time.Sleep(100 * time.Millisecond)
	}
	menu := stillScreen(t, q)
	waitScreen(t, p, q)
	if d := screenChange(prompt, menu); d.H <= 16 {
		t.Errorf("the boot menu screen differs from the prompt only in %v", d)
	}
	noErrors(t, p)
}
