package server_test

import (
	"testing"

	"kvmgate/framebuffer"
	"kvmgate/server"
)

// TestCursorPosReachesViewer checks that the backend's cursor position
// reaches a viewer as a cursorpos message, the latest of a burst last, and
// that a viewer joining later is told the current position.
func TestCursorPosReachesViewer(t *testing.T) {
	e := newEnv(t, server.Options{Target: "vnc://fake:1"}, 320, 200)
	c := e.connect("")
	c.converge(e.snapshot())
	s, err := e.srv.Hub().Session("vnc://fake:1")
	if err != nil {
		t.Fatal(err)
	}
	fb := s.Framebuffer()
	for i := range 50 {
		fb.SetCursorPos(i, 100-i)
	}
	for {
		m := c.waitJSON("cursorpos")
		x, y := m["x"].(float64), m["y"].(float64)
		if x < 0 || x > 49 || x+y != 100 {
			t.Fatalf("cursorpos %v is none of the positions set", m)
		}
		if x == 49 {
			break
		}
	}

	late := e.connect("")
	if m := late.waitJSON("cursorpos"); m["x"] != 49.0 || m["y"] != 51.0 {
		t.Fatalf("a new viewer got cursorpos %v, want 49,51", m)
	}
}

// TestCursorPosCoalescedBehindAcks holds a viewer at its limit of frames in
// flight and moves the cursor many times: after the ack the viewer gets
// one cursorpos, with the latest position.
func TestCursorPosCoalescedBehindAcks(t *testing.T) {
	e := newEnv(t, server.Options{Target: "vnc://fake:1"}, 320, 200)
	c := e.connect("")
	// Frame 1 is acknowledged, so the link is measured and slow start (no
	// second frame behind a large unacknowledged one) is over.
	c.converge(e.snapshot())
	// Photo-like areas of the first frame may go lossy before the first
	// ack (encoders/ratectl's ProbeQuality) and be refined by a second.
	base := c.frames
	c.noAck = true
	for i, colour := range []uint32{0xff00ff00, 0xff0000ff} {
		want := e.paint(c, func(cv *framebuffer.Canvas, bt *framebuffer.Batch) {
			cv.Fill(rc(16*i, 0, 16, 16), colour)
			bt.Damage(rc(16*i, 0, 16, 16))
		})
		c.converge(want) // frames 2 and 3, not acknowledged
	}
	if c.frames != base+server.MaxInflight {
		t.Fatalf("%d frames received, want %d", c.frames, base+server.MaxInflight)
	}
	s, err := e.srv.Hub().Session("vnc://fake:1")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		s.Framebuffer().SetCursorPos(i, 100-i)
	}
	c.send(map[string]any{"t": "ack", "f": c.dec.LastFrame})
	if m := c.waitJSON("cursorpos"); m["x"] != 49.0 || m["y"] != 51.0 {
		t.Fatalf("first cursorpos after the ack %v, want the latest 49,51", m)
	}
	for _, m := range c.msgs {
		if m["t"] == "cursorpos" {
			t.Fatalf("an older cursorpos arrived too: %v", c.msgs)
		}
	}
}
