package session_test

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"kvmgate/backend"
	"kvmgate/framebuffer"
	"kvmgate/input"
	"kvmgate/session"
	"kvmgate/session/sessiontest"
)

// wait is a deadlock guard, not a timing assertion.
const wait = 10 * time.Second

func newHub(t *testing.T, b *sessiontest.Backend, idle time.Duration) *session.Hub {
	t.Helper()
	base := runtime.NumGoroutine()
	h := session.NewHub(session.Options{
		Open: b.Open, IdleTimeout: idle, Logger: slog.New(slog.DiscardHandler),
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
	})
	t.Cleanup(func() {
		h.Close()
		checkGoroutines(t, base)
	})
	return h
}

// checkGoroutines waits for the goroutine count to return to base.
func checkGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d, baseline %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// takeFull waits for a change and checks that the viewer gets a full frame
// equal to the framebuffer.
func takeFull(t *testing.T, v *session.Viewer) *framebuffer.Canvas {
	t.Helper()
	var mirror framebuffer.Canvas
	deadline := time.After(wait)
	for {
		select {
		case <-v.Changed():
		case <-deadline:
			t.Fatal("no frame")
		}
		u := v.Take(&mirror)
		if u.Resized && u.Width > 0 {
			if !mirror.Equal(v.Session().Framebuffer().Snapshot()) {
				t.Fatal("mirror differs from framebuffer")
			}
			return &mirror
		}
	}
}

func waitStatus(t *testing.T, v *session.Viewer, want session.State) {
	t.Helper()
	deadline := time.After(wait)
	for v.Session().Status().State != want {
		select {
		case <-v.StatusChanged():
		case <-deadline:
			t.Fatalf("state %q, want %q", v.Session().Status().State, want)
		}
	}
}

func TestTwoViewersShareOneBackend(t *testing.T) {
	b := &sessiontest.Backend{}
	h := newHub(t, b, time.Hour)
	v1, err := h.Join("vnc://a:1")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := h.Join("vnc://a:1")
	if err != nil {
		t.Fatal(err)
	}
	if v1.Session() != v2.Session() {
		t.Fatal("viewers of one target got two sessions")
	}
	takeFull(t, v1)
	takeFull(t, v2)
	if n := b.Opens(); n != 1 {
		t.Fatalf("backend opened %d times, want 1", n)
	}
	v3, err := h.Join("vnc://b:1")
	if err != nil {
		t.Fatal(err)
	}
	if v3.Session() == v1.Session() {
		t.Fatal("two targets share a session")
	}
	if s, vs := h.Counts(); s != 2 || vs != 3 {
		t.Fatalf("counts %d sessions %d viewers, want 2 and 3", s, vs)
	}
}

func TestSessionSurvivesViewersAndEndsAfterIdle(t *testing.T) {
	b := &sessiontest.Backend{}
	h := newHub(t, b, 50*time.Millisecond)
	v1, _ := h.Join("t")
	takeFull(t, v1)
	s := v1.Session()
	// A reconnecting tab: leave and join again before the idle timeout.
	v1.Leave()
	v2, _ := h.Join("t")
	if v2.Session() != s {
		t.Fatal("rejoin made a new session")
	}
	takeFull(t, v2)
	if n := b.Opens(); n != 1 {
		t.Fatalf("backend opened %d times, want 1", n)
	}
	v2.Leave()
	v2.Leave() // idempotent
	select {
	case <-s.Done():
	case <-time.After(wait):
		t.Fatal("session did not end after the idle timeout")
	}
	if st := s.Status(); st.State != session.StateEnded {
		t.Fatalf("state %v, want ended", st)
	}
	if h.Lookup(s.ID()) != nil {
		t.Fatal("ended session still listed")
	}
	v3, _ := h.Join("t")
	if v3.Session() == s {
		t.Fatal("joined an ended session")
	}
	takeFull(t, v3)
	if n := b.Opens(); n != 2 {
		t.Fatalf("backend opened %d times, want 2", n)
	}
}

func TestIdleTimerDoesNotEndWatchedSession(t *testing.T) {
	b := &sessiontest.Backend{}
	h := newHub(t, b, time.Hour)
	s, err := h.Session("t") // as the API does: no viewer yet
	if err != nil {
		t.Fatal(err)
	}
	v, _ := h.Join("t")
	takeFull(t, v)
	v.Leave()
	if h.Lookup(s.ID()) != s || s.Status().State != session.StateConnected {
		t.Fatalf("session gone or not connected after its viewer left: %v", s.Status())
	}
}

func TestReconnect(t *testing.T) {
	b := &sessiontest.Backend{}
	h := newHub(t, b, time.Hour)
	v, _ := h.Join("t")
	takeFull(t, v)
	waitStatus(t, v, session.StateConnected)
	b.SetOpenError(errors.New("refused"))
	b.Last().Fail(errors.New("link down"))
	waitStatus(t, v, session.StateReconnecting)
	if msg := v.Session().Status().Message; msg == "" {
		t.Error("reconnecting status has no message")
	}
	// Let at least one retry fail before the backend comes back.
	deadline := time.Now().Add(wait)
	for b.Opens() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.SetOpenError(nil)
	waitStatus(t, v, session.StateConnected)
	if info := v.Session().Info(); info.Reconnections != 1 {
		t.Fatalf("reconnections %d, want 1", info.Reconnections)
	}
	// The new backend repaints; the viewer still converges.
	<-b.Last().Ready
	var mirror framebuffer.Canvas
	v.Take(&mirror)
	b.Last().Paint(context.Background(), func(c *framebuffer.Canvas, bt *framebuffer.Batch) {
		r := framebuffer.Rect{X: 10, Y: 10, W: 20, H: 20}
		c.Fill(r, 0xff0000ff)
		bt.Damage(r)
	})
	<-v.Changed()
	v.Take(&mirror)
	if !mirror.Equal(v.Session().Framebuffer().Snapshot()) {
		t.Fatal("mirror differs after reconnect")
	}
}

func TestEndNotifiesViewers(t *testing.T) {
	b := &sessiontest.Backend{}
	h := newHub(t, b, time.Hour)
	v, _ := h.Join("t")
	takeFull(t, v)
	if !h.End(v.Session().ID()) {
		t.Fatal("End found no session")
	}
	waitStatus(t, v, session.StateEnded)
	select {
	case <-v.Done():
	case <-time.After(wait):
		t.Fatal("Done not closed")
	}
	if err := v.Key(input.KeyEvent{Code: "KeyA", Down: true}); !errors.Is(err, session.ErrEnded) {
		t.Fatalf("input after end: %v, want ErrEnded", err)
	}
	if h.End("nope") {
		t.Fatal("End of unknown id succeeded")
	}
}

func TestInput(t *testing.T) {
	b := &sessiontest.Backend{}
	h := newHub(t, b, time.Hour)
	v, _ := h.Join("t")
	takeFull(t, v)
	waitStatus(t, v, session.StateConnected)
	if err := v.Key(input.KeyEvent{Code: "KeyA", Key: "a", Down: true}); err != nil {
		t.Fatal(err)
	}
	if err := v.Combo("ctrl-alt-del"); err != nil {
		t.Fatal(err)
	}
	if err := v.Combo("no-such-combo"); err == nil {
		t.Fatal("unknown combo accepted")
	}
	if err := v.Type("us", "hi"); err != nil {
		t.Fatal(err)
	}
	if err := v.Type("no-such-layout", "hi"); err == nil {
		t.Fatal("unknown layout accepted")
	}
	if err := v.Pointer(input.PointerEvent{X: 3, Y: 4, Buttons: input.ButtonLeft}); err != nil {
		t.Fatal(err)
	}
	if err := v.Action(input.ActionReboot); err != nil {
		t.Fatal(err)
	}
	// The fake does not support actions; the error comes back to the viewer.
	select {
	case err := <-v.Errors():
		if err == nil {
			t.Fatal("nil error")
		}
	case <-time.After(wait):
		t.Fatal("no error for an unsupported action")
	}
	c := b.Last()
	keys := c.Keys()
	combo, _ := input.Combo("ctrl-alt-del")
	typed, _ := input.TypeText("us", "hi")
	if len(keys) != 1+len(combo)+len(typed) || keys[0].Code != "KeyA" {
		t.Fatalf("console got %d keys %v", len(keys), keys)
	}
	if p := c.Pointers(); len(p) != 1 || p[0].X != 3 {
		t.Fatalf("pointers %v", p)
	}
}

func TestHubClosed(t *testing.T) {
	b := &sessiontest.Backend{}
	h := session.NewHub(session.Options{Open: b.Open})
	h.Close()
	if _, err := h.Join("t"); !errors.Is(err, session.ErrHubClosed) {
		t.Fatalf("Join after Close: %v", err)
	}
}

// TestResizeCoalesces: a burst of resize requests reaches the console as
// the first and the last, clamped to the bounds; a request for the current
// size is dropped.
func TestResizeCoalesces(t *testing.T) {
	b := &sessiontest.Backend{Resizable: true}
	h := newHub(t, b, time.Hour)
	v, _ := h.Join("t")
	takeFull(t, v)
	waitStatus(t, v, session.StateConnected)
	c := b.Last()
	<-c.Ready
	if !v.Session().Framebuffer().Caps().Resizable {
		t.Error("caps not resizable")
	}
	if err := v.Resize(320, 200); err != nil { // the current size: dropped
		t.Fatal(err)
	}
	for i := range 20 {
		if err := v.Resize(400+i, 300); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Resize(100000, 1); err != nil {
		t.Fatal(err)
	}
	fb := v.Session().Framebuffer()
	deadline := time.Now().Add(wait)
	for w, h := fb.Size(); w != session.MaxResizeSize || h != session.MinResizeHeight; w, h = fb.Size() {
		if time.Now().After(deadline) {
			t.Fatalf("framebuffer %dx%d, resizes %v", w, h, c.Resizes())
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := c.Resizes()
	// One request per ResizeInterval: the 22 requests took far less than
	// 10 intervals.
	if n := len(got); n < 1 || n >= 10 || got[n-1] != [2]int{session.MaxResizeSize, session.MinResizeHeight} {
		t.Errorf("console got resizes %v, want a few ending in %dx%d", got, session.MaxResizeSize, session.MinResizeHeight)
	}
	for _, r := range got {
		if r == [2]int{320, 200} {
			t.Errorf("the request for the current size was sent: %v", got)
		}
	}
}

// TestResizeUnsupported: a console that is not a backend.Resizer refuses
// at once.
func TestResizeUnsupported(t *testing.T) {
	b := &sessiontest.Backend{}
	base := runtime.NumGoroutine()
	h := session.NewHub(session.Options{
		Open: func(ctx context.Context, target string) (backend.Console, error) {
			c, err := b.Open(ctx, target)
			return struct{ backend.Console }{c}, err // hides Resize
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	t.Cleanup(func() {
		h.Close()
		checkGoroutines(t, base)
	})
	v, _ := h.Join("t")
	takeFull(t, v)
	waitStatus(t, v, session.StateConnected)
	if err := v.Resize(800, 600); !errors.Is(err, backend.ErrUnsupported) {
		t.Errorf("Resize on a console without Resize: %v, want ErrUnsupported", err)
	}
}
