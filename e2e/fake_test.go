package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/input"
	"kvmgate/internal/browsertest"
	"kvmgate/server"
	"kvmgate/session/sessiontest"
)

// keyLog formats key events as "Code down|up" for comparison.
func keyLog(evs []input.KeyEvent) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "%s %v,", e.Code, e.Down)
	}
	return b.String()
}

// waitKeys waits until the console has received key events whose log
// contains want.
func waitKeys(t *testing.T, c *sessiontest.Console, want string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !strings.Contains(keyLog(c.Keys()), want) {
		if time.Now().After(deadline) {
			t.Fatalf("console got keys %q, want them to contain %q", keyLog(c.Keys()), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFakeBackend runs the real server and client against the in-process
// fake console of session/sessiontest.
func TestFakeBackend(t *testing.T) {
	fake := &sessiontest.Backend{W: 320, H: 200}
	srv, hs := startServer(t, server.Options{Target: "vnc://127.0.0.1:5999", Open: fake.Open})
	b := browsertest.Launch(t)
	p := b.NewPage(t, hs.URL+"/")
	waitConnected(t, p)
	sess := onlySession(t, srv.Hub())
	waitSame(t, p, sess.Framebuffer())

	// A change on the console reaches the canvas.
	con := fake.Last()
	ok := con.Paint(context.Background(), func(c *framebuffer.Canvas, batch *framebuffer.Batch) {
		r := framebuffer.Rect{X: 17, Y: 33, W: 120, H: 50}
		c.Fill(r, 0xff3060c0)
		batch.Damage(r)
	})
	if !ok {
		t.Fatal("fake console is not running")
	}
	waitSame(t, p, sess.Framebuffer())

	// Keys typed in the page reach the console as physical keys.
	p.MustEval(t, el+`.focus()`)
	p.Type(t, "hi")
	p.KeyPress(t, "Enter")
	waitKeys(t, con, "KeyH true,KeyH false,KeyI true,KeyI false,Enter true,Enter false,")

	// The special-keys menu sends Ctrl-Alt-Del.
	p.WaitFor(t, el+`.shadowRoot.querySelector('#keys-menu button[data-name="ctrl-alt-del"]')`, wait)
	p.ClickElement(t, "kvm-console >>> button.keys")
	p.ClickElement(t, `kvm-console >>> #keys-menu button[data-name="ctrl-alt-del"]`)
	waitKeys(t, con, "ControlLeft true,AltLeft true,Delete true,Delete false,AltLeft false,ControlLeft false,")

	// A second tab shares the backend connection.
	p2 := b.NewPage(t, hs.URL+"/")
	waitConnected(t, p2)
	waitSame(t, p2, sess.Framebuffer())
	if n := fake.Opens(); n != 1 {
		t.Errorf("two tabs opened %d backend connections, want 1", n)
	}
	if _, viewers := srv.Hub().Counts(); viewers != 2 {
		t.Errorf("hub counts %d viewers, want 2", viewers)
	}

	// A reloaded tab resumes on the same backend connection.
	p.Reload(t)
	waitConnected(t, p)
	waitSame(t, p, sess.Framebuffer())
	if n := fake.Opens(); n != 1 {
		t.Errorf("after a reload: %d backend connections, want 1", n)
	}
	noErrors(t, p, p2)
}
