package server_test

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"kvmgate/server"
	"kvmgate/session"
)

// TestResizeMessage: a viewer's "resize" reaches a resizable console,
// clamped, and the viewer's canvas follows; the hello says the console
// can resize.
func TestResizeMessage(t *testing.T) {
	e := newEnv(t, server.Options{Target: "vnc://fake:1"}, 320, 200)
	e.backend.Resizable = true
	c := e.connect("")
	if c.hello["resize"] != true || c.hello["pointer"] != "absolute" {
		t.Errorf("hello resize %v pointer %v, want true and absolute", c.hello["resize"], c.hello["pointer"])
	}
	c.converge(e.snapshot())
	c.send(map[string]any{"t": "resize", "w": 640.4, "h": 480})
	deadline := time.Now().Add(wait)
	for c.dec.Canvas.W != 640 || c.dec.Canvas.H != 480 {
		if time.Now().After(deadline) {
			t.Fatalf("canvas %dx%d after asking for 640x480", c.dec.Canvas.W, c.dec.Canvas.H)
		}
		if _, err := c.step(); err != nil {
			t.Fatal(err)
		}
	}
	c.converge(e.snapshot())
	c.send(map[string]any{"t": "resize", "w": 10, "h": 10})
	for c.dec.Canvas.W != session.MinResizeWidth || c.dec.Canvas.H != session.MinResizeHeight {
		if time.Now().After(deadline) {
			t.Fatalf("canvas %dx%d after asking for 10x10", c.dec.Canvas.W, c.dec.Canvas.H)
		}
		if _, err := c.step(); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.backend.Last().Resizes(); len(got) != 2 || got[0] != [2]int{640, 480} {
		t.Errorf("console resizes %v, want 640x480 then the minimum", got)
	}
}

// TestResizeBadSizes: sizes that are not sizes are protocol errors.
func TestResizeBadSizes(t *testing.T) {
	e := newEnv(t, server.Options{Target: "vnc://fake:1"}, 320, 200)
	for _, msg := range []string{
		`{"t":"resize","w":-5,"h":200}`,
		`{"t":"resize","w":800}`,
		`{"t":"resize","w":1e9,"h":600}`,
		`{"t":"resize","w":"800","h":600}`,
	} {
		t.Run(msg, func(t *testing.T) {
			c := e.connect("")
			c.t = t
			if err := c.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			if m := c.waitJSON("error"); m["fatal"] != true {
				t.Fatalf("error %v, want fatal", m)
			}
			if ce := c.waitClose(); ce.Code != websocket.ClosePolicyViolation {
				t.Fatalf("close code %d (%q), want 1008", ce.Code, ce.Text)
			}
		})
	}
}

// waitCaps reads "caps" messages until one names the pointer kind.
func (c *client) waitCaps(pointer string) map[string]any {
	c.t.Helper()
	for {
		if m := c.waitJSON("caps"); m["pointer"] == pointer {
			return m
		}
	}
}

// TestCapsMessage: when the console's pointer kind changes, connected
// viewers get a "caps" message with the new kind.
func TestCapsMessage(t *testing.T) {
	e := newEnv(t, server.Options{Target: "vnc://fake:1"}, 320, 200)
	c1 := e.connect("")
	c2 := e.connect("")
	for _, c := range []*client{c1, c2} {
		if c.hello["resize"] != false || c.hello["pointer"] != "absolute" {
			t.Errorf("hello resize %v pointer %v, want false and absolute", c.hello["resize"], c.hello["pointer"])
		}
		c.converge(e.snapshot())
	}
	con := e.backend.Last()
	<-con.Ready
	con.SetPointer("relative")
	for _, c := range []*client{c1, c2} {
		if m := c.waitCaps("relative"); m["resize"] != false {
			t.Errorf("caps %v, want resize false", m)
		}
	}
	con.SetPointer("absolute")
	c1.waitCaps("absolute")
	// A viewer joining now learns the current kind from its hello.
	c3 := e.connect("")
	if c3.hello["pointer"] != "absolute" {
		t.Errorf("hello pointer %v, want absolute", c3.hello["pointer"])
	}
	con.SetPointer("relative")
	c3.waitCaps("relative")
}
