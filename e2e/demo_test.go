package e2e

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"kvmgate/demo"
	"kvmgate/internal/browsertest"
	"kvmgate/server"
)

// TestDemo runs the demo console's RFB server, the real kvmgate server
// connected to it over vnc:// and the console page in headless Chromium.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	clock := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	addr, con, err := demo.Start(ctx, demo.Options{
		Width: 640, Height: 400,
		PauseAnimation: true, // a still screen can be compared exactly
		Now:            func() time.Time { return clock },
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-con.Done():
		case <-time.After(wait):
			t.Error("demo console did not stop")
		}
	})
	srv, hs := startServer(t, server.Options{Target: "vnc://" + addr})
	fb := con.Framebuffer()

	b := browsertest.Launch(t)
	p := b.NewPage(t, hs.URL+"/")
	waitConnected(t, p)
	waitSame(t, p, fb)

	// Typing in the page runs a command on the console.
	p.MustEval(t, el+`.focus()`)
	p.Type(t, "echo hi")
	p.KeyPress(t, "Enter")
	waitText(t, con, demo.Prompt+"echo hi\nhi")
	waitSame(t, p, fb)

	// The special-keys menu sends Ctrl-Alt-Del.
	p.WaitFor(t, el+`.shadowRoot.querySelector('#keys-menu button[data-name="ctrl-alt-del"]')`, wait)
	p.ClickElement(t, "kvm-console >>> button.keys")
	p.ClickElement(t, `kvm-console >>> #keys-menu button[data-name="ctrl-alt-del"]`)
	waitText(t, con, demo.CtrlAltDelMessage)
	waitSame(t, p, fb)

	// Two tabs share one backend connection: one session, and one RFB
	// client subscribed to the demo's framebuffer.
	p2 := b.NewPage(t, hs.URL+"/")
	waitConnected(t, p2)
	waitSame(t, p2, fb)
	if n := fb.Viewers(); n != 1 {
		t.Errorf("two tabs: the demo has %d RFB connections, want 1", n)
	}
	if sessions, viewers := srv.Hub().Counts(); sessions != 1 || viewers != 2 {
		t.Errorf("two tabs: hub has %d sessions and %d viewers, want 1 and 2", sessions, viewers)
	}

	// A reloaded tab resumes: a full frame on the same backend connection.
	before := onlySession(t, srv.Hub()).Info()
	p.Reload(t)
	waitConnected(t, p)
	waitSame(t, p, fb)
	if n := fb.Viewers(); n != 1 {
		t.Errorf("after a reload: the demo has %d RFB connections, want 1", n)
	}
	if after := onlySession(t, srv.Hub()).Info(); after.ID != before.ID || after.Reconnections != before.Reconnections {
		t.Errorf("after a reload: session %s (%d backend reconnections), want %s (%d)", after.ID, after.Reconnections, before.ID, before.Reconnections)
	}
	p.MustEval(t, el+`.focus()`)
	p.Type(t, "echo again")
	p.KeyPress(t, "Enter")
	waitText(t, con, "\nagain")
	noErrors(t, p, p2)
}

// waitText waits until the demo terminal shows sub.
func waitText(t *testing.T, con *demo.Console, sub string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := con.WaitText(ctx, sub); err != nil {
		text := con.Text()
		if i := strings.LastIndex(text, "\n"); len(text) > 400 && i >= 0 {
			text = text[len(text)-400:]
		}
		t.Fatalf("demo terminal never showed %q: %v; it shows:\n%s", sub, err, text)
	}
}
