package spice

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/input"
	"kvmgate/internal/testserver"
)

// Linux input event types and codes the mouse tests look for.
const (
	evKey      = 1
	evRel      = 2
	evAbs      = 3
	relX       = 0
	relY       = 1
	relWheel   = 8
	absX       = 0
	absY       = 1
	btnLeft    = 0x110
	btnRight   = 0x111
	qemuAbsMax = 0x7fff // QEMU's INPUT_EVENT_ABS_MAX
)

// guestEvent is one "KVMEV" line of the guest's evdump.
type guestEvent struct {
	dev              string
	typ, code, value int
}

// eventLog reads the guest's evdump lines from its serial log.
type eventLog struct {
	q *testserver.QEMU
}

// device waits until evdump opened a device whose name contains name and
// returns its node ("event2").
func (l eventLog) device(t *testing.T, name string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, line := range strings.Split(l.q.Serial(), "\n") {
			f := strings.SplitN(strings.TrimSpace(line), " ", 3)
			if len(f) == 3 && f[0] == "KVMEV-DEV" && strings.Contains(f[2], name) {
				return f[1]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guest has no input device named %q; serial log:\n%s", name, l.q.Serial())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mark returns the position in the serial log from which events count.
func (l eventLog) mark() int { return len(l.q.Serial()) }

// events returns the events of dev logged since mark.
func (l eventLog) events(mark int, dev string) []guestEvent {
	s := l.q.Serial()
	if mark > len(s) {
		return nil
	}
	var evs []guestEvent
	for _, line := range strings.Split(s[mark:], "\n") {
		f := strings.Fields(line)
		if len(f) != 5 || f[0] != "KVMEV" || f[1] != dev {
			continue
		}
		var n [3]int
		ok := true
		for i := range n {
			v, err := strconv.Atoi(f[2+i])
			n[i], ok = v, ok && err == nil
		}
		if ok {
			evs = append(evs, guestEvent{dev, n[0], n[1], n[2]})
		}
	}
	return evs
}

// wait waits until done holds for the events of dev since mark.
func (l eventLog) wait(t *testing.T, mark int, dev, what string, done func([]guestEvent) bool) []guestEvent {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs := l.events(mark, dev)
		if done(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guest's %s did not see %s; its events: %v", dev, what, evs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sum adds up the values of the events of one type and code.
func sum(evs []guestEvent, typ, code int) int {
	n := 0
	for _, e := range evs {
		if e.typ == typ && e.code == code {
			n += e.value
		}
	}
	return n
}

// values lists the values of the events of one type and code, in order.
func values(evs []guestEvent, typ, code int) []int {
	var v []int
	for _, e := range evs {
		if e.typ == typ && e.code == code {
			v = append(v, e.value)
		}
	}
	return v
}

// waitPointerKind waits until the framebuffer's caps name the pointer kind
// viewers should use.
func waitPointerKind(t *testing.T, fb *framebuffer.Framebuffer, kind string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for fb.Caps().Pointer != kind {
		if time.Now().After(deadline) {
			t.Fatalf("framebuffer pointer kind %q, want %q", fb.Caps().Pointer, kind)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitMouseMode(t *testing.T, c *Client, mode uint32) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for c.MouseMode() != mode {
		if time.Now().After(deadline) {
			t.Fatalf("mouse mode is %d, want %d", c.MouseMode(), mode)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func pointer(t *testing.T, c *Client, evs ...input.PointerEvent) {
	t.Helper()
	for _, ev := range evs {
		if err := c.Pointer(ev); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMouseModes drives the Linux guest's pointer through the inputs
// channel and reads back what its input devices report (evdev events,
// dumped to the serial port by the guest program). Without an absolute
// pointing device QEMU's SPICE server offers only server mouse mode: the
// client sends relative motion, which reaches the guest's PS/2 mouse
// exactly. Hot-plugging a USB tablet makes the server offer client mode,
// which the client asks for at once; absolute positions, buttons and the
// wheel then reach the tablet, scaled as QEMU scales them. Unplugging it
// brings server mode back.
func TestMouseModes(t *testing.T) {
	q, addr := spiceQEMUWith(t, testserver.InputGuest(), "disable-ticketing=on")
	log := eventLog{q}
	ps2 := log.device(t, "PS/2", time.Minute)
	fb := framebuffer.New()
	c := runClient(t, addr, Options{}, fb)
	deadline := time.Now().Add(30 * time.Second)
	for c.inputs() == nil || fb.Snapshot().W == 0 {
		if time.Now().After(deadline) {
			t.Fatal("inputs or display channel never linked")
		}
		time.Sleep(50 * time.Millisecond)
	}
	w, h := fb.Snapshot().W, fb.Snapshot().H
	if c.MouseMode() != MouseModeServer {
		t.Fatalf("mouse mode %d without a tablet, want server (%d)", c.MouseMode(), MouseModeServer)
	}
	waitPointerKind(t, fb, "relative")

	relative := func(t *testing.T, x0, y0 int) {
		t.Helper()
		m := log.mark()
		pointer(t, c,
			input.PointerEvent{X: x0, Y: y0},
			input.PointerEvent{X: x0 + 30, Y: y0 - 10},
			input.PointerEvent{X: x0 + 100, Y: y0 + 50},
			input.PointerEvent{X: x0 + 100, Y: y0 + 50, Buttons: input.ButtonLeft},
			input.PointerEvent{X: x0 + 100, Y: y0 + 50},
		)
		evs := log.wait(t, m, ps2, "the motion and a click", func(e []guestEvent) bool {
			return sum(e, evRel, relX) == 100 && sum(e, evRel, relY) == 50 && len(values(e, evKey, btnLeft)) == 2
		})
		if v := values(evs, evKey, btnLeft); fmt.Sprint(v) != "[1 0]" {
			t.Errorf("left button events %v, want [1 0]", v)
		}
	}
	t.Run("server", func(t *testing.T) { relative(t, 200, 150) })

	if _, err := q.Monitor("device_add usb-tablet,id=tablet"); err != nil {
		t.Fatal(err)
	}
	tablet := log.device(t, "Tablet", time.Minute)
	waitMouseMode(t, c, MouseModeClient)
	waitPointerKind(t, fb, "absolute")
	t.Run("client", func(t *testing.T) {
		m := log.mark()
		for _, p := range [][2]int{{w / 2, h / 2}, {w - 1, h - 1}, {17, 5}} {
			pointer(t, c, input.PointerEvent{X: p[0], Y: p[1]})
			wantX, wantY := p[0]*qemuAbsMax/w, p[1]*qemuAbsMax/h
			log.wait(t, m, tablet, fmt.Sprintf("position %d,%d (%d,%d)", p[0], p[1], wantX, wantY), func(e []guestEvent) bool {
				x, y := values(e, evAbs, absX), values(e, evAbs, absY)
				return len(x) > 0 && len(y) > 0 && x[len(x)-1] == wantX && y[len(y)-1] == wantY
			})
		}
		m0 := log.mark()
		m = m0
		pointer(t, c,
			input.PointerEvent{X: 17, Y: 5, Buttons: input.ButtonRight},
			input.PointerEvent{X: 17, Y: 5},
		)
		evs := log.wait(t, m, tablet, "a right click", func(e []guestEvent) bool {
			return len(values(e, evKey, btnRight)) == 2
		})
		if v := values(evs, evKey, btnRight); fmt.Sprint(v) != "[1 0]" {
			t.Errorf("right button events %v, want [1 0]", v)
		}
		// Wheel up is a positive REL_WHEEL in Linux.
		for _, notches := range []int{-2, 1} {
			m = log.mark()
			pointer(t, c, input.PointerEvent{X: 17, Y: 5, WheelY: notches})
			log.wait(t, m, tablet, fmt.Sprintf("%d wheel notches", notches), func(e []guestEvent) bool {
				return sum(e, evRel, relWheel) == -notches
			})
		}
		m = m0
		if n := len(log.events(m, ps2)); n != 0 {
			t.Errorf("the PS/2 mouse saw %d events in client mode", n)
		}
	})

	if _, err := q.Monitor("device_del tablet"); err != nil {
		t.Fatal(err)
	}
	waitMouseMode(t, c, MouseModeServer)
	waitPointerKind(t, fb, "relative")
	t.Run("server again", func(t *testing.T) { relative(t, 300, 200) })
}
