package spice

import (
	"fmt"
	"testing"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/internal/testserver"
	"kvmgate/internal/testserver/guestcursor"
)

// addTablet plugs a USB tablet into the guest and waits until QEMU uses it
// as its current (absolute) mouse, which is when its SPICE server offers
// client mouse mode. (A tablet restored from a snapshot never becomes
// current again in QEMU 7.2, whose HID state migrates the device as already
// active without activating its input handler: hence the hot plug.)
func addTablet(t *testing.T, q *testserver.QEMU) {
	t.Helper()
	if _, err := q.Monitor("device_add usb-tablet,id=tablet"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var mice []struct {
			Name     string `json:"name"`
			Current  bool   `json:"current"`
			Absolute bool   `json:"absolute"`
		}
		if err := q.QMP("query-mice", nil, &mice); err != nil {
			t.Fatal(err)
		}
		for _, m := range mice {
			if m.Current && m.Absolute {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the USB tablet never became QEMU's current mouse: %+v", mice)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cursorWatch follows the cursor a framebuffer's viewers are told about.
type cursorWatch struct {
	v   *framebuffer.Viewer
	dst *framebuffer.Canvas
	cur *framebuffer.Cursor
	// x, y are the last cursor position reported, if moved.
	x, y  int
	moved bool
}

func watchCursor(fb *framebuffer.Framebuffer) *cursorWatch {
	c, _ := framebuffer.NewCanvas(1, 1)
	return &cursorWatch{v: fb.Subscribe(), dst: c}
}

// wait takes updates until ok holds for the current cursor (nil: hidden).
func (w *cursorWatch) wait(t *testing.T, what string, ok func(*framebuffer.Cursor) bool) *framebuffer.Cursor {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		u := w.v.Take(w.dst)
		if u.CursorChanged {
			w.cur = u.Cursor
		}
		if u.CursorMoved {
			w.x, w.y, w.moved = u.CursorX, u.CursorY, true
		}
		if ok(w.cur) {
			return w.cur
		}
		select {
		case <-w.v.Changed():
		case <-deadline:
			t.Fatalf("no %s; the cursor is %s, at %d,%d (moved: %v)", what, describeCursor(w.cur), w.x, w.y, w.moved)
		}
	}
}

func describeCursor(c *framebuffer.Cursor) string {
	if c == nil {
		return "hidden"
	}
	return fmt.Sprintf("%dx%d, hotspot %d,%d", c.W, c.H, c.HotX, c.HotY)
}

// cursorMismatch compares a decoded cursor with the guest program's shape
// and describes the first difference ("" when equal).
func cursorMismatch(c *framebuffer.Cursor) string {
	if c == nil {
		return "no cursor"
	}
	if c.W != guestcursor.W || c.H != guestcursor.H || c.HotX != guestcursor.HotX || c.HotY != guestcursor.HotY {
		return fmt.Sprintf("cursor %s, want %dx%d, hotspot %d,%d", describeCursor(c),
			guestcursor.W, guestcursor.H, guestcursor.HotX, guestcursor.HotY)
	}
	for y := 0; y < c.H; y++ {
		for x := 0; x < c.W; x++ {
			p := guestcursor.Pixel(x, y)
			want := [4]byte{byte(p >> 16), byte(p >> 8), byte(p), byte(p >> 24)}
			i := 4 * (y*c.W + x)
			if got := [4]byte(c.Pix[i : i+4]); got != want {
				return fmt.Sprintf("cursor pixel %d,%d is RGBA %v, want %v", x, y, got, want)
			}
		}
	}
	return ""
}

// TestCursorChannel has the Linux guest set a hardware cursor through the
// qxl KMS driver (DRM_IOCTL_MODE_CURSOR2 with a dumb buffer) and checks
// that the cursor channel delivers it to the framebuffer as a cursor shape,
// pixel for pixel with its hotspot (CURSOR_SET while connected, CURSOR_INIT
// for a client that connects later), that the screen itself stays equal to
// QEMU's screendump (the cursor is not drawn into the pixels), and that the
// cursor goes away when the guest gives the display back to its console.
// A USB tablet plugged in before the client connects makes the server offer
// client mouse mode in its INIT message; the client asks for it at once.
func TestCursorChannel(t *testing.T) {
	q, addr := spiceQEMUWith(t, testserver.InputGuest(), "disable-ticketing=on")
	addTablet(t, q)
	fb := framebuffer.New()
	w := watchCursor(fb)
	c := runClient(t, addr, Options{}, fb)
	waitFrame(t, fb, screendump(t, q), 30*time.Second)
	waitMouseMode(t, c, MouseModeClient)

	q.TypeText(t, testserver.GuestProgramName+" cursor &\n")
	q.WaitSerial(t, "KVMGATE-CURSOR-SET", time.Minute)
	w.wait(t, "cursor from the guest", func(c *framebuffer.Cursor) bool { return cursorMismatch(c) == "" })
	// Pixels of the console may change (the typed command); once QEMU's
	// screen is still, the decoded screen equals it, without the cursor.
	q.WaitSettled(t, time.Minute)
	waitFrame(t, fb, screendump(t, q), 30*time.Second)

	// A client that connects now gets the cursor in CURSOR_INIT. (QEMU
	// serves one client at a time: close the first.)
	c.Close()
	fb2 := framebuffer.New()
	w2 := watchCursor(fb2)
	runClient(t, addr, Options{}, fb2)
	w2.wait(t, "cursor for a new client", func(c *framebuffer.Cursor) bool { return cursorMismatch(c) == "" })

	q.TypeText(t, "killall "+testserver.GuestProgramName+"\n")
	w2.wait(t, "hidden cursor after the guest program ended", func(c *framebuffer.Cursor) bool { return c == nil })
}

// TestCursorMoves runs the guest in server mouse mode (no tablet), where
// the browser cannot show its own pointer, and checks that the positions
// the guest gives its hardware cursor reach the framebuffer: the one it
// sets with the shape, then a move (CURSOR_MOVE) while connected. SPICE
// positions are the hotspot's.
func TestCursorMoves(t *testing.T) {
	q, addr := spiceQEMUWith(t, testserver.InputGuest(), "disable-ticketing=on")
	fb := framebuffer.New()
	w := watchCursor(fb)
	c := runClient(t, addr, Options{}, fb)
	waitFrame(t, fb, screendump(t, q), 30*time.Second)
	waitMouseMode(t, c, MouseModeServer)

	q.TypeText(t, testserver.GuestProgramName+" cursor &\n")
	q.WaitSerial(t, "KVMGATE-CURSOR-SET", time.Minute)
	at := func(x, y int) func(*framebuffer.Cursor) bool {
		return func(c *framebuffer.Cursor) bool { return c != nil && w.moved && w.x == x && w.y == y }
	}
	// The guest program moves its cursor to 100,80 (its top left corner).
	w.wait(t, "cursor at the guest's first position", at(100+guestcursor.HotX, 80+guestcursor.HotY))
	q.TypeText(t, "echo 300 200 >/tmp/kvmgate-cursor\n")
	q.WaitSerial(t, "KVMGATE-CURSOR-MOVED 300 200", time.Minute)
	w.wait(t, "cursor at the guest's second position", at(300+guestcursor.HotX, 200+guestcursor.HotY))
	if msg := cursorMismatch(w.cur); msg != "" {
		t.Fatal(msg)
	}
}
