package demo

import (
	"testing"

	"kvmgate/framebuffer"
)

// TestMotion: with Options.Motion every tick repaints the motion area (the
// right half between title bar and box strip) with a different picture,
// the terminal keeps the left half, and pausing stops it.
func TestMotion(t *testing.T) {
	clk := &fakeClock{t: t0}
	c, err := New(Options{Width: 640, Height: 400, Motion: true, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	want := framebuffer.Rect{X: 320, Y: titleH, W: 320, H: 400 - titleH - animH}
	if c.motion != want {
		t.Fatalf("motion area %v, want %v", c.motion, want)
	}
	if c.term.X+c.term.W > c.motion.X {
		t.Fatalf("terminal %v overlaps the motion area %v", c.term, c.motion)
	}
	v := c.Framebuffer().Subscribe()
	defer v.Close()
	var mirror framebuffer.Canvas
	v.Take(&mirror)
	before := c.Framebuffer().Snapshot()
	c.step(3)
	u := v.Take(&mirror)
	covered := 0
	for _, r := range u.Damage {
		covered += r.Intersect(c.motion).Area()
	}
	if covered != c.motion.Area() {
		t.Fatalf("a motion tick damaged %d of the area's %d pixels: %v", covered, c.motion.Area(), u.Damage)
	}
	after := c.Framebuffer().Snapshot()
	changed := 0
	for y := c.motion.Y; y < c.motion.Y+c.motion.H; y++ {
		for x := c.motion.X; x < c.motion.X+c.motion.W; x++ {
			if before.At(x, y) != after.At(x, y) {
				changed++
			}
		}
	}
	if changed < c.motion.Area()/2 {
		t.Errorf("one tick changed %d of %d pixels of the motion area", changed, c.motion.Area())
	}
	if !mirror.Equal(after) {
		t.Fatal("mirror differs from the framebuffer")
	}

	c.SetAnimationPaused(true)
	c.step(3)
	if u := v.Take(&mirror); !u.Empty() {
		t.Fatalf("paused, a tick still damaged %v", u.Damage)
	}

	// Closed, the area is plain background and stays so.
	c.SetAnimationPaused(false)
	c.SetMotion(false)
	c.step(3)
	c.step(3)
	v.Take(&mirror)
	probe, _ := framebuffer.NewCanvas(1, 1)
	fill(probe, probe.Bounds(), colTermBG)
	bg := probe.At(0, 0)
	for y := c.motion.Y; y < c.motion.Y+c.motion.H; y++ {
		for x := c.motion.X; x < c.motion.X+c.motion.W; x++ {
			if p := mirror.At(x, y); p != bg {
				t.Fatalf("closed motion area: pixel %d,%d is %08x, want %08x", x, y, p, bg)
			}
		}
	}
	c.SetMotion(true)
	c.step(3)
	if u := v.Take(&mirror); len(u.Damage) == 0 {
		t.Fatal("reopened, the motion area does not move")
	}
}

func BenchmarkMotionFrame(b *testing.B) {
	c, err := New(Options{Motion: true})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(c.motion.Area() * 4))
	for i := 0; b.Loop(); i++ {
		c.drawMotion(i)
	}
}
