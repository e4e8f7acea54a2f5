package spice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/input"
	"kvmgate/internal/testserver"
)

// TestMain sets up image capture: with SPICE_CAPTURE=DIR, every compressed
// image a display channel decodes is written to DIR (to seed testdata).
func TestMain(m *testing.M) {
	if dir := os.Getenv("SPICE_CAPTURE"); dir != "" {
		// Set once, before any client runs: display goroutines read it.
		captureImage = func(typ uint8, data []byte) {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("image-%d-%d.bin", typ, len(data))), data, 0o644)
		}
	}
	os.Exit(m.Run())
}

// spiceQEMU starts a SeaBIOS QEMU machine with a QXL card and a SPICE
// server on a free loopback port, with extra SPICE options (comma
// separated, may be empty), and returns it with the SPICE address.
func spiceQEMU(t *testing.T, spiceOpts string, extra ...string) (*testserver.QEMU, string) {
	t.Helper()
	return spiceQEMUWith(t, testserver.QEMUOptions{}, spiceOpts, extra...)
}

// spiceQEMUWith is spiceQEMU for a machine described by o (VGA is set to
// qxl).
func spiceQEMUWith(t *testing.T, o testserver.QEMUOptions, spiceOpts string, extra ...string) (*testserver.QEMU, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts QEMU")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 not installed (Debian package qemu-system-x86; scripts/install-deps.sh installs it)")
	}
	o.VGA = "qxl"
	o.SPICE, o.SPICEOptions = true, spiceOpts
	o.ExtraArgs = append(o.ExtraArgs, extra...)
	q := testserver.StartQEMU(t, o)
	addr := q.SPICEAddr()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SPICE port %s never opened: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return q, addr
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// runClient dials and runs a client on fb in the background; it stops
// when the test ends.
func runClient(t *testing.T, addr string, opts Options, fb *framebuffer.Framebuffer) *Client {
	t.Helper()
	opts.Logger = testLogger(t)
	ctx, cancel := context.WithCancel(context.Background())
	c, err := Dial(ctx, addr, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, fb) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return c
}

// waitFrame waits until fb equals want (ignoring at most one 9×16 text
// cell, the blinking cursor), returning the last snapshot.
func waitFrame(t *testing.T, fb *framebuffer.Framebuffer, want func() *framebuffer.Canvas, timeout time.Duration) *framebuffer.Canvas {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got, ref *framebuffer.Canvas
	for time.Now().Before(deadline) {
		got, ref = fb.Snapshot(), want()
		if got.W == ref.W && got.H == ref.H {
			if d := diff(got, ref); d.W <= 9 && d.H <= 16 {
				return got
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got != nil && ref != nil {
		dump(t, "got", got)
		dump(t, "want", ref)
		if got.W == ref.W && got.H == ref.H {
			t.Fatalf("frame %dx%d differs from the reference in %v", got.W, got.H, diff(got, ref))
		}
		t.Fatalf("frame is %dx%d, reference %dx%d", got.W, got.H, ref.W, ref.H)
	}
	t.Fatal("no frame")
	return nil
}

func diff(a, b *framebuffer.Canvas) framebuffer.Rect {
	var r framebuffer.Rect
	for y := 0; y < a.H; y++ {
		ra, rb := a.Row(0, y, a.W), b.Row(0, y, b.W)
		if string(ra) == string(rb) {
			continue
		}
		for x := 0; x < a.W; x++ {
			if string(ra[4*x:4*x+3]) != string(rb[4*x:4*x+3]) {
				r = r.Union(framebuffer.Rect{X: x, Y: y, W: 1, H: 1})
			}
		}
	}
	return r
}

func dump(t *testing.T, name string, c *framebuffer.Canvas) {
	dir := os.Getenv("SPICE_TEST_DUMP")
	if dir == "" {
		return
	}
	f := filepath.Join(dir, name+".ppm")
	b := []byte(fmt.Sprintf("P6\n%d %d\n255\n", c.W, c.H))
	for i := 0; i < len(c.Pix); i += 4 {
		b = append(b, c.Pix[i:i+3]...)
	}
	os.WriteFile(f, b, 0o644)
	t.Logf("wrote %s", f)
}

func screendump(t *testing.T, q *testserver.QEMU) func() *framebuffer.Canvas {
	return func() *framebuffer.Canvas {
		c, err := q.Screenshot()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

// TestSeaBIOSCompressions checks the decoded SeaBIOS screen against QEMU's
// own screendump for each image compression the client can ask for.
func TestSeaBIOSCompressions(t *testing.T) {
	for _, tc := range []struct {
		comp string
		typ  int // the image type that must have been decoded
	}{
		{"off", imageBitmap},
		{"auto_lz", imageLZRGB},
		{"lz", imageLZRGB},
		{"quic", imageQUIC},
		{"lz4", imageLZ4},
	} {
		comp := tc.comp
		t.Run(comp, func(t *testing.T) {
			q, addr := spiceQEMU(t, "disable-ticketing=on")
			q.WaitSettled(t, time.Minute)
			c, err := ParseCompression(comp)
			if err != nil {
				t.Fatal(err)
			}
			fb := framebuffer.New()
			cl := runClient(t, addr, Options{Compression: c}, fb)
			got := waitFrame(t, fb, screendump(t, q), 30*time.Second)
			if got.W != 720 || got.H != 400 || blank(got) {
				t.Errorf("SeaBIOS screen is %dx%d (blank %v), want 720x400 with text", got.W, got.H, blank(got))
			}
			var counts []string
			for typ := range cl.images {
				if n := cl.images[typ].Load(); n > 0 {
					counts = append(counts, fmt.Sprintf("type %d: %d", typ, n))
				}
			}
			t.Logf("images decoded: %v", counts)
			if cl.images[tc.typ].Load() == 0 {
				t.Errorf("no image of type %d decoded (%v)", tc.typ, counts)
			}
		})
	}
}

// TestPassword links with the right and a wrong password.
func TestPassword(t *testing.T) {
	_, addr := spiceQEMU(t, "password-secret=sec0", "-object", "secret,id=sec0,data=s3cret")
	ctx := context.Background()
	_, err := Dial(ctx, addr, Options{Password: "wrong"})
	var le *LinkError
	if !errors.As(err, &le) || le.Code != LinkErrPermissionDenied || !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("wrong password: got %v, want permission denied", err)
	}
	c, err := Dial(ctx, addr, Options{Password: "s3cret"})
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	c.Close()
}

// TestBootMenuKey opens SeaBIOS's boot menu with Esc sent through the
// inputs channel and watches the screen change.
func TestBootMenuKey(t *testing.T) {
	q, addr := spiceQEMU(t, "disable-ticketing=on", "-boot", "menu=on,splash-time=30000")
	fb := framebuffer.New()
	c := runClient(t, addr, Options{}, fb)
	// Wait for the boot menu prompt ("Press ESC for boot menu").
	deadline := time.Now().Add(60 * time.Second)
	var before *framebuffer.Canvas
	for {
		if c.inputs() != nil {
			if s := fb.Snapshot(); s.W > 0 && !blank(s) {
				before = s
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no screen and inputs channel")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Wait until the prompt has been still for 1.5 s (the splash lasts
	// 30 s), so that a change after Esc is Esc's doing.
	stillSince := time.Now()
	for time.Since(stillSince) < 1500*time.Millisecond {
		time.Sleep(100 * time.Millisecond)
		s := fb.Snapshot()
		if s.W != before.W || s.H != before.H {
			before, stillSince = s, time.Now()
			continue
		}
		if d := diff(s, before); d.W > 9 || d.H > 16 {
			before, stillSince = s, time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatal("the screen never settled")
		}
	}
	for _, down := range []bool{true, false} {
		if err := c.Key(input.KeyEvent{Code: "Escape", Down: down}); err != nil {
			t.Fatal(err)
		}
	}
	for {
		s := fb.Snapshot()
		if s.W == before.W && s.H == before.H {
			if d := diff(s, before); d.H > 16 {
				// The menu replaced the prompt; QEMU agrees.
				waitFrame(t, fb, screendump(t, q), 20*time.Second)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the screen did not change after Esc")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func blank(c *framebuffer.Canvas) bool {
	for i := 0; i < len(c.Pix); i += 4 {
		if c.Pix[i] != 0 || c.Pix[i+1] != 0 || c.Pix[i+2] != 0 {
			return false
		}
	}
	return true
}

// TestSpicyScreenshot compares the decoded SeaBIOS screen with what
// spice-gtk's spicy-screenshot decodes from the same server.
func TestSpicyScreenshot(t *testing.T) {
	bin, err := exec.LookPath("spicy-screenshot")
	if err != nil {
		t.Fatal("spicy-screenshot not installed (Debian spice-client-gtk)")
	}
	for _, comp := range []string{"off", "quic", "lz", "auto_lz"} {
		t.Run(comp, func(t *testing.T) {
			q, addr := spiceQEMU(t, "disable-ticketing=on,image-compression="+comp)
			q.WaitSettled(t, time.Minute)
			host, port, _ := net.SplitHostPort(addr)
			out := filepath.Join(t.TempDir(), "spicy.ppm")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if b, err := exec.CommandContext(ctx, bin, "-h", host, "-p", port, "-o", out).CombinedOutput(); err != nil {
				t.Fatalf("spicy-screenshot: %v\n%s", err, b)
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := testserver.ParsePPM(data)
			if err != nil {
				t.Fatal(err)
			}
			fb := framebuffer.New()
			runClient(t, addr, Options{Compression: CompressionServer}, fb)
			waitFrame(t, fb, func() *framebuffer.Canvas { return ref }, 30*time.Second)
		})
	}
}
