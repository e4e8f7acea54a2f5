package pacing

import (
	"math/rand/v2"
	"testing"

	"kvmgate/encoders/tiles"
	"kvmgate/encoders/tiles/tilestest"
	"kvmgate/framebuffer"
)

func TestBudget(t *testing.T) {
	if got := Budget(256e3); got != 3200 {
		t.Errorf("Budget(256 kbit/s) = %d, want 3200 (100 ms)", got)
	}
	if got := Budget(1e3); got != MinBudget {
		t.Errorf("Budget(1 kbit/s) = %d, want MinBudget", got)
	}
}

// TestRefinerPieces sends a noisy picture lossily, then refines it with a
// small budget: every frame stays near the budget, the refinement needs
// several frames, and the browser's picture ends exact.
func TestRefinerPieces(t *testing.T) {
	src, _ := framebuffer.NewCanvas(256, 192)
	rng := rand.New(rand.NewPCG(1, 2))
	noise(src, rng)
	enc := tiles.NewEncoder()
	dec := tilestest.NewDecoder()
	buf := tiles.AppendResize(nil, src.W, src.H)
	buf, err := enc.Encode(buf, src, src.Bounds(), tiles.Quality{Lossy: true, JPEG: 45})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Apply(tiles.AppendFrameEnd(buf, 1)); err != nil {
		t.Fatal(err)
	}
	if !enc.Lossy() {
		t.Fatal("noise sent with JPEG is not lossy")
	}
	var r Refiner
	if r.Active(enc) {
		t.Fatal("active before Start")
	}
	r.Start()
	const budget = 4000
	frames := 0
	for r.Active(enc) {
		frames++
		if frames > 1000 {
			t.Fatal("refinement does not end")
		}
		out, err := r.Append(nil, enc, src, budget)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) == 0 {
			t.Fatal("an active refinement appended nothing")
		}
		// One piece of 64×16 noise is at most ~3 KiB lossless.
		if len(out) > budget+4096 {
			t.Errorf("frame %d: %d bytes for a budget of %d", frames, len(out), budget)
		}
		if _, err := dec.Apply(tiles.AppendFrameEnd(out, uint32(frames+1))); err != nil {
			t.Fatal(err)
		}
	}
	if frames < 10 {
		t.Errorf("refinement of 192 KiB of noise took %d frames at %d bytes each", frames, budget)
	}
	if !dec.Canvas.Equal(src) {
		t.Error("the browser's picture is not exact after the refinement")
	}
}

func TestRefinerStops(t *testing.T) {
	var r Refiner
	enc := tiles.NewEncoder()
	src, _ := framebuffer.NewCanvas(64, 64)
	noise(src, rand.New(rand.NewPCG(3, 4)))
	if _, err := enc.Encode(nil, src, src.Bounds(), tiles.Quality{Lossy: true, JPEG: 45}); err != nil {
		t.Fatal(err)
	}
	r.Start()
	r.Damaged(10, 64, 64)
	if !r.Active(enc) {
		t.Error("a small change stopped the refinement")
	}
	r.Damaged(64*64/StopShare+1, 64, 64)
	if r.Active(enc) {
		t.Error("a large change did not stop the refinement")
	}
}

// noise fills c with random opaque pixels.
func noise(c *framebuffer.Canvas, rng *rand.Rand) {
	for i := range c.Pix {
		c.Pix[i] = byte(rng.IntN(256))
		if i%4 == 3 {
			c.Pix[i] = 0xff
		}
	}
}
