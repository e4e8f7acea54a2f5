package spice

import (
	"bytes"
	"context"
	"image"
	"image/draw"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"kvmgate/framebuffer"
)

// TestFirstFrame checks that FirstFrame fires with the whole screen in the
// framebuffer: what a one-shot screenshot relies on.
func TestFirstFrame(t *testing.T) {
	q, addr := spiceQEMU(t, "disable-ticketing=on")
	q.WaitSettled(t, time.Minute)
	c, err := Dial(context.Background(), addr, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fb := framebuffer.New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, fb) }()
	select {
	case <-c.FirstFrame():
	case err := <-done:
		t.Fatalf("Run ended before the first frame: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no first frame")
	}
	got := fb.Snapshot()
	want := screendump(t, q)()
	if got.W != want.W || got.H != want.H {
		t.Fatalf("first frame %dx%d, screen %dx%d", got.W, got.H, want.W, want.H)
	}
	if d := diff(got, want); d.W > 9 || d.H > 16 {
		t.Fatalf("first frame differs from the screen in %v", d)
	}
	// A 720×400 screen, even compressed, is more than a few hundred bytes.
	if n := c.BytesReceived(); n < 1000 || c.Info().Details["bytes_received"] == "0" {
		t.Errorf("BytesReceived %d, Info %v", n, c.Info().Details)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestSnapshotCommand runs `kvmgate snapshot --target spice://...` and
// compares its PNG with QEMU's screendump.
func TestSnapshotCommand(t *testing.T) {
	q, addr := spiceQEMU(t, "disable-ticketing=on")
	q.WaitSettled(t, time.Minute)
	dir := t.TempDir()
	bin := filepath.Join(dir, "kvmgate")
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = "/usr/local/go/bin/go"
	}
	if out, err := exec.Command(gobin, "build", "-o", bin, "kvmgate/cmd/kvmgate").CombinedOutput(); err != nil {
		t.Fatalf("building kvmgate: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "screen.png")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "snapshot", "--target", "spice://"+addr+"?compression=lz4", "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kvmgate snapshot: %v\n%s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	got, err := framebuffer.NewCanvas(b.Dx(), b.Dy())
	if err != nil {
		t.Fatal(err)
	}
	draw.Draw(&image.RGBA{Pix: got.Pix, Stride: got.Stride, Rect: image.Rect(0, 0, got.W, got.H)}, image.Rect(0, 0, got.W, got.H), img, b.Min, draw.Src)
	want := screendump(t, q)()
	if got.W != want.W || got.H != want.H {
		t.Fatalf("snapshot %dx%d, screen %dx%d", got.W, got.H, want.W, want.H)
	}
	if d := diff(got, want); d.W > 9 || d.H > 16 {
		dump(t, "snapshot", got)
		t.Fatalf("snapshot differs from the screen in %v", d)
	}
}
