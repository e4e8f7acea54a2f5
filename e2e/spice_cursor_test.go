package e2e

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/png"
	"strconv"
	"strings"
	"testing"
	"time"

	"kvmgate/internal/browsertest"
	"kvmgate/internal/testserver"
	"kvmgate/internal/testserver/guestcursor"
	"kvmgate/server"
)

// Linux input event types and codes, as the guest's evdump prints them.
const (
	evKey = 1
	evAbs = 3
	absX  = 0
	absY  = 1
	btnL  = 0x110
)

// guestEvents returns the guest's evdump lines ("KVMEV dev type code
// value") since byte mark of its serial log, as [type, code, value].
func guestEvents(q *testserver.QEMU, mark int) [][3]int {
	s := q.Serial()
	if mark > len(s) {
		return nil
	}
	var evs [][3]int
	for _, line := range strings.Split(s[mark:], "\n") {
		f := strings.Fields(line)
		if len(f) != 5 || f[0] != "KVMEV" {
			continue
		}
		var e [3]int
		ok := true
		for i := range e {
			v, err := strconv.Atoi(f[2+i])
			e[i], ok = v, ok && err == nil
		}
		if ok {
			evs = append(evs, e)
		}
	}
	return evs
}

// waitGuestEvents waits until done holds for the guest's input events
// since mark.
func waitGuestEvents(t *testing.T, q *testserver.QEMU, mark int, what string, done func([][3]int) bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		evs := guestEvents(q, mark)
		if done(evs) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guest did not see %s; its input events: %v", what, evs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lastValue returns the value of the last event of a type and code, or -1.
func lastValue(evs [][3]int, typ, code int) int {
	v := -1
	for _, e := range evs {
		if e[0] == typ && e[1] == code {
			v = e[2]
		}
	}
	return v
}

// TestSPICEBrowserCursorAndPointer serves the Linux guest on the qxl KMS
// console, with a USB tablet (SPICE client mouse mode), to the console page
// in headless Chromium. The hello says the pointer is absolute; a mouse move
// and click in the page reach the guest's tablet at the framebuffer pixel
// under the page's pointer (QEMU scales positions to 0..32767). Then the
// guest sets a hardware cursor through DRM: the page shows it as its CSS
// cursor (a PNG equal, pixel for pixel, to what the guest drew, with the
// guest's hotspot) while the canvas stays equal to QEMU's screendump.
// Unplugging the tablet then switches the page to relative motion.
func TestSPICEBrowserCursorAndPointer(t *testing.T) {
	t.Parallel()
	b := browsertest.Launch(t)
	q := startInputGuest(t)
	// The same guest as spice.TestMouseModes and TestCursorChannel (one
	// cached snapshot). The tablet is hot-plugged: a tablet restored from the snapshot would not become
	// QEMU's absolute mouse again (see spice.TestCursorChannel).
	if _, err := q.Monitor("device_add usb-tablet,id=tablet"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for !strings.Contains(q.Serial(), "Tablet") || !absoluteMouse(t, q) {
		if time.Now().After(deadline) {
			t.Fatalf("the USB tablet never became the guest's current mouse; serial log:\n%s", q.Serial())
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, hs := startServer(t, server.Options{Target: "spice://" + q.SPICEAddr()})
	p := b.NewPage(t, hs.URL+"/")
	waitConnected(t, p)
	p.WaitFor(t, el+`.hello && `+el+`.hello.pointer === "absolute"`, wait)
	waitScreen(t, p, q)

	var r struct{ Left, Top, Width, Height, W, H float64 }
	if err := p.EvalInto(`(() => { const c = `+el+`.canvas, r = c.getBoundingClientRect(); return {left: r.left, top: r.top, width: r.width, height: r.height, w: c.width, h: c.height}; })()`, &r); err != nil {
		t.Fatal(err)
	}
	mark := len(q.Serial())
	for _, f := range [][2]int{{300, 200}, {int(r.W) - 1, 3}} {
		x, y := r.Left+(float64(f[0])+0.5)*r.Width/r.W, r.Top+(float64(f[1])+0.5)*r.Height/r.H
		p.MouseMove(t, x, y)
		wantX, wantY := f[0]*0x7fff/int(r.W), f[1]*0x7fff/int(r.H)
		waitGuestEvents(t, q, mark, fmt.Sprintf("the pointer at %d,%d (%d,%d)", f[0], f[1], wantX, wantY), func(e [][3]int) bool {
			return lastValue(e, evAbs, absX) == wantX && lastValue(e, evAbs, absY) == wantY
		})
		if f[0] == 300 {
			mark = len(q.Serial())
			p.MouseDown(t, x, y, browsertest.Left)
			p.MouseUp(t, x, y, browsertest.Left)
			waitGuestEvents(t, q, mark, "a left click", func(e [][3]int) bool {
				var v []int
				for _, ev := range e {
					if ev[0] == evKey && ev[1] == btnL {
						v = append(v, ev[2])
					}
				}
				return fmt.Sprint(v) == "[1 0]"
			})
		}
	}

	q.TypeText(t, testserver.GuestProgramName+" cursor\n")
	q.WaitSerial(t, "KVMGATE-CURSOR-SET", time.Minute)
	hot := fmt.Sprintf(" %d %d, default", guestcursor.HotX, guestcursor.HotY)
	p.WaitFor(t, el+`.canvas.style.cursor.startsWith('url("data:image/png;base64,') && `+el+`.canvas.style.cursor.endsWith(`+strconv.Quote(hot)+`)`, wait)
	var css string
	if err := p.EvalInto(el+`.canvas.style.cursor`, &css); err != nil {
		t.Fatal(err)
	}
	b64, _, _ := strings.Cut(strings.TrimPrefix(css, `url("data:image/png;base64,`), `"`)
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("cursor data URL: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("cursor PNG: %v", err)
	}
	if d := cursorImageMismatch(img); d != "" {
		t.Error(d)
	}
	waitScreen(t, p, q)

	// Unplugging the tablet brings SPICE server mouse mode back: the page
	// learns it from a caps message on the same connection and takes
	// relative motion (Pointer Lock on a click) from then on.
	p.MustEval(t, `window.kvmgateConn = `+el+`.conn`)
	if _, err := q.Monitor("device_del tablet"); err != nil {
		t.Fatal(err)
	}
	p.WaitFor(t, el+`.hello.pointer === "relative" && `+el+`.input.relative`, wait)
	var same bool
	if err := p.EvalInto(el+`.conn === window.kvmgateConn`, &same); err != nil || !same {
		t.Errorf("the page reconnected to learn the pointer kind (%v)", err)
	}
	noErrors(t, p)
}

// absoluteMouse reports whether QEMU's current mouse is absolute (which
// makes its SPICE server offer client mouse mode).
func absoluteMouse(t *testing.T, q *testserver.QEMU) bool {
	var mice []struct {
		Current  bool `json:"current"`
		Absolute bool `json:"absolute"`
	}
	if err := q.QMP("query-mice", nil, &mice); err != nil {
		t.Fatal(err)
	}
	for _, m := range mice {
		if m.Current && m.Absolute {
			return true
		}
	}
	return false
}

// cursorImageMismatch compares the page's cursor image with the guest
// program's cursor and describes the first difference ("" when equal).
func cursorImageMismatch(img image.Image) string {
	bd := img.Bounds()
	if bd.Dx() != guestcursor.W || bd.Dy() != guestcursor.H {
		return fmt.Sprintf("cursor image %dx%d, want %dx%d", bd.Dx(), bd.Dy(), guestcursor.W, guestcursor.H)
	}
	for y := 0; y < guestcursor.H; y++ {
		for x := 0; x < guestcursor.W; x++ {
			p := guestcursor.Pixel(x, y)
			want := [4]uint32{p >> 16 & 0xff, p >> 8 & 0xff, p & 0xff, p >> 24}
			r, g, b, a := img.At(bd.Min.X+x, bd.Min.Y+y).RGBA()
			if got := [4]uint32{r >> 8, g >> 8, b >> 8, a >> 8}; got != want {
				return fmt.Sprintf("cursor pixel %d,%d is RGBA %v, want %v", x, y, got, want)
			}
		}
	}
	return ""
}

// startInputGuest starts testserver.InputGuest on qxl with SPICE (no
// ticket): the guest of the SPICE cursor and pointer tests, one cached
// snapshot with spice.TestMouseModes and TestCursorChannel.
func startInputGuest(t *testing.T) *testserver.QEMU {
	o := testserver.InputGuest()
	o.VGA, o.SPICE, o.SPICEOptions = "qxl", true, "disable-ticketing=on"
	return testserver.StartQEMU(t, o)
}
