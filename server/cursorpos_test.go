package server_test

import (
	"testing"

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
