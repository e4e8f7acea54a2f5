package spice

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/internal/testserver"
)

// TestJPEGSpicyScreenshot makes QEMU send JPEG (image-compression=quic with
// jpeg-wan-compression=always) for the Linux guest's qxl console (SeaBIOS's
// VGA screen never goes lossy) and compares the decoded screen with
// spice-gtk's spicy-screenshot of it. JPEG decoders may round differently,
// so pixels may differ by a few levels, never more.
func TestJPEGSpicyScreenshot(t *testing.T) {
	bin, err := exec.LookPath("spicy-screenshot")
	if err != nil {
		t.Fatal("spicy-screenshot not installed (Debian spice-client-gtk)")
	}
	q, addr := spiceQEMUWith(t, testserver.QEMUOptions{
		Guest: testserver.GuestLinux, Modules: []string{"qxl"},
	}, "disable-ticketing=on,image-compression=quic,jpeg-wan-compression=always")
	q.WaitSettled(t, testserver.LinuxBootTimeout)
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
	c := runClient(t, addr, Options{Compression: CompressionServer}, fb)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := fb.Snapshot()
		if got.W == ref.W && got.H == ref.H && c.images[imageJPEG].Load() > 0 {
			// Beyond rounding, only the blinking cursor's cell may differ.
			bad := lossyDiff(got, ref, 8)
			if bad.W <= 9 && bad.H <= 16 {
				worst, at := maxChannelDiff(got, ref, bad)
				t.Logf("JPEG images: %d; largest channel difference from spicy-screenshot: %d at %v (outside %v)", c.images[imageJPEG].Load(), worst, at, bad)
				return
			}
			if time.Now().After(deadline) {
				dump(t, "got", got)
				dump(t, "want", ref)
				t.Fatalf("decoded screen differs from spicy-screenshot by more than 8 levels in %v", bad)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("screen %dx%d (spicy-screenshot %dx%d), %d JPEG images decoded", got.W, got.H, ref.W, ref.H, c.images[imageJPEG].Load())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// lossyDiff returns the bounds of the pixels where a colour channel of a
// and b (same size) differs by more than tol.
func lossyDiff(a, b *framebuffer.Canvas, tol int) framebuffer.Rect {
	var r framebuffer.Rect
	for y := 0; y < a.H; y++ {
		ra, rb := a.Row(0, y, a.W), b.Row(0, y, b.W)
		for x := 0; x < a.W; x++ {
			for i := 0; i < 3; i++ {
				if absDiff(ra[4*x+i], rb[4*x+i]) > tol {
					r = r.Union(framebuffer.Rect{X: x, Y: y, W: 1, H: 1})
					break
				}
			}
		}
	}
	return r
}

// maxChannelDiff returns the largest difference of one colour channel
// between a and b (same size) outside skip, and where it is.
func maxChannelDiff(a, b *framebuffer.Canvas, skip framebuffer.Rect) (int, [2]int) {
	worst, at := 0, [2]int{}
	for y := 0; y < a.H; y++ {
		ra, rb := a.Row(0, y, a.W), b.Row(0, y, b.W)
		for x := 0; x < a.W; x++ {
			if (framebuffer.Rect{X: x, Y: y, W: 1, H: 1}).In(skip) {
				continue
			}
			for i := 0; i < 3; i++ {
				if d := absDiff(ra[4*x+i], rb[4*x+i]); d > worst {
					worst, at = d, [2]int{x, y}
				}
			}
		}
	}
	return worst, at
}
