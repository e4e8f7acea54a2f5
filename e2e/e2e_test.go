package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"kvmgate/client"
	"kvmgate/demo"
	"kvmgate/framebuffer"
	"kvmgate/internal/browsertest"
	"kvmgate/server"
	"kvmgate/session"
)

const wait = 20 * time.Second

// el is the console element of the page.
const el = `document.querySelector('kvm-console')`

// startServer serves opts (with the real client) over HTTP for the test.
func startServer(t *testing.T, opts server.Options) (*server.Server, *httptest.Server) {
	t.Helper()
	opts.Client = client.FS
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.CloseClientConnections()
		srv.Close()
		hs.Close()
	})
	return srv, hs
}

// waitConnected waits until the page's console has drawn a frame.
func waitConnected(t *testing.T, p *browsertest.Page) {
	t.Helper()
	p.WaitFor(t, el+` && `+el+`.state === 'connected' && `+el+`.stats().framesDrawn > 0`, wait)
}

// onlySession returns the hub's single session.
func onlySession(t *testing.T, hub *session.Hub) *session.Session {
	t.Helper()
	list := hub.List()
	if len(list) != 1 {
		t.Fatalf("hub has %d sessions, want 1: %+v", len(list), list)
	}
	s := hub.Lookup(list[0].ID)
	if s == nil {
		t.Fatalf("session %s vanished", list[0].ID)
	}
	return s
}

// waitSame waits until the page's canvas equals the backend's framebuffer
// exactly (lossy frames are refined to lossless once the screen is quiet),
// and fails with the differences otherwise.
func waitSame(t *testing.T, p *browsertest.Page, fb *framebuffer.Framebuffer) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		want := fb.Snapshot()
		got, err := p.CanvasPixels("kvm-console")
		if err != nil {
			t.Fatal(err)
		}
		diff := compare(got, want)
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the browser's canvas differs from the backend's framebuffer after %v: %s", wait, diff)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// compare describes how got differs from want, or returns "".
func compare(got, want *framebuffer.Canvas) string {
	if got.W != want.W || got.H != want.H {
		return fmt.Sprintf("canvas %dx%d, framebuffer %dx%d", got.W, got.H, want.W, want.H)
	}
	bad, first := 0, ""
	for y := 0; y < want.H; y++ {
		for x := 0; x < want.W; x++ {
			if g, w := got.At(x, y), want.At(x, y); g != w {
				if bad == 0 {
					first = fmt.Sprintf("first at %d,%d: %08x, want %08x", x, y, g, w)
				}
				bad++
			}
		}
	}
	if bad == 0 {
		return ""
	}
	return fmt.Sprintf("%d pixels differ, %s", bad, first)
}

// noErrors fails the test if a page logged errors.
func noErrors(t *testing.T, pages ...*browsertest.Page) {
	t.Helper()
	for i, p := range pages {
		if errs := p.Errors(); len(errs) != 0 {
			t.Errorf("page %d errors: %q", i, errs)
		}
	}
}

// startDemo starts the built-in demo console until the test ends and
// returns its RFB address and the console.
func startDemo(tb testing.TB, opts demo.Options) (string, *demo.Console) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr, con, err := demo.Start(ctx, opts)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cancel()
		<-con.Done()
	})
	return addr, con
}
