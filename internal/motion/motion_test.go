package motion

import (
	"testing"

	"kvmgate/framebuffer"
)

func TestStampRoundTrip(t *testing.T) {
	s, err := New(1280, 800)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := framebuffer.NewCanvas(1280, 800)
	for _, n := range []int{0, 1, 2, 255, 256, 1234, 65535, 65536 + 7} {
		s.Render(c, n)
		got, ok := ReadStamp(c)
		if !ok || got != n%(1<<StampBits) {
			t.Errorf("frame %d: stamp reads %d, %v", n, got, ok)
		}
	}
	// A block that no longer disagrees with its complement is refused.
	s.Render(c, 5)
	fillRGB(c, framebuffer.Rect{X: 3 * StampBlock, Y: 0, W: StampBlock, H: StampBlock}, [3]byte{0xff, 0xff, 0xff})
	fillRGB(c, framebuffer.Rect{X: (StampBits + 3) * StampBlock, Y: 0, W: StampBlock, H: StampBlock}, [3]byte{0xff, 0xff, 0xff})
	if n, ok := ReadStamp(c); ok {
		t.Errorf("damaged stamp read as %d", n)
	}
	// Mild noise, as a lossy codec leaves, does not change the reading.
	s.Render(c, 4321)
	for i := 0; i < len(c.Pix); i += 4 {
		d := byte(i / 4 % 41)
		if c.Pix[i] > 128 {
			c.Pix[i], c.Pix[i+1], c.Pix[i+2] = c.Pix[i]-d, c.Pix[i+1]-d, c.Pix[i+2]-d
		} else {
			c.Pix[i], c.Pix[i+1], c.Pix[i+2] = c.Pix[i]+d, c.Pix[i+1]+d, c.Pix[i+2]+d
		}
	}
	if n, ok := ReadStamp(c); !ok || n != 4321 {
		t.Errorf("noisy stamp reads %d, %v; want 4321", n, ok)
	}
}

func TestRenderDeterministicAndMoving(t *testing.T) {
	for _, size := range [][2]int{{1280, 800}, {1920, 1080}} {
		s, err := New(size[0], size[1])
		if err != nil {
			t.Fatal(err)
		}
		a, _ := framebuffer.NewCanvas(size[0], size[1])
		b, _ := framebuffer.NewCanvas(size[0], size[1])
		s.Render(a, 100)
		s.Render(b, 99)
		s.Render(b, 100) // over an earlier frame: no trace of it remains
		if !a.Equal(b) {
			t.Fatalf("%dx%d: frame 100 painted twice differs", size[0], size[1])
		}
		s.Render(b, 101)
		// Every part of the scene changes from one frame to the next, the
		// log only every other frame; everything else stays.
		pan, text := s.PanRect(), s.TextRect()
		if changed(a, b, pan) < pan.Area()/2 {
			t.Errorf("%dx%d: only %d of %d scene pixels change in a frame", size[0], size[1], changed(a, b, pan), pan.Area())
		}
		if n := changed(a, b, text); n != 0 {
			t.Errorf("%dx%d: %d log pixels change from frame 100 to 101", size[0], size[1], n)
		}
		s.Render(b, 102)
		if changed(a, b, text) == 0 {
			t.Errorf("%dx%d: the log does not scroll by frame 102", size[0], size[1])
		}
		if pan.Y+pan.H != text.Y || text.Y+text.H != size[1] || pan.Area() < size[0]*size[1]/2 {
			t.Errorf("%dx%d: layout scene %v text %v", size[0], size[1], pan, text)
		}
		var batch framebuffer.Batch
		s.Damage(&batch, 101)
		if batch.Len() != 2 {
			t.Errorf("frame 101 damages %d rectangles, want 2 (stamp, scene)", batch.Len())
		}
		if rs := s.Changed(102); len(rs) != 3 || rs[2] != text {
			t.Errorf("frame 102 changes %v, want the stamp, the scene and the log", rs)
		}
	}
	if _, err := New(400, 300); err == nil {
		t.Error("New accepted a screen narrower than the stamp")
	}
}

// changed counts the pixels of r that differ between a and b.
func changed(a, b *framebuffer.Canvas, r framebuffer.Rect) int {
	n := 0
	for y := r.Y; y < r.Y+r.H; y++ {
		for x := r.X; x < r.X+r.W; x++ {
			if a.At(x, y) != b.At(x, y) {
				n++
			}
		}
	}
	return n
}

func BenchmarkRender1080p(b *testing.B) {
	s, err := New(1920, 1080)
	if err != nil {
		b.Fatal(err)
	}
	c, _ := framebuffer.NewCanvas(1920, 1080)
	n := 0
	for b.Loop() {
		s.Render(c, n)
		n++
	}
}
