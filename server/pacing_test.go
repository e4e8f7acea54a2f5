package server

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"kvmgate/encoders/pacing"
	"kvmgate/encoders/ratectl"
	"kvmgate/encoders/tiles"
	"kvmgate/encoders/tiles/tilestest"
	"kvmgate/framebuffer"
)

// TestPacedRefinement drives the paced refinement the way sendFrame does on
// a measured 256 kbit/s link: a lossily sent photo is refined in several
// frames of about the budget each, and ends exact in the browser; without
// a measured goodput the refinement stays a single frame's job.
func TestPacedRefinement(t *testing.T) {
	vc := &viewerConn{enc: tiles.NewEncoder(), rc: measured(32000)} // 256 kbit/s
	if !vc.paced() {
		t.Fatalf("quality %+v at 256 kbit/s is not paced", vc.rc.Quality())
	}
	vc.mirror.Resize(256, 192)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range vc.mirror.Pix {
		vc.mirror.Pix[i] = byte(rng.IntN(256))
		if i%4 == 3 {
			vc.mirror.Pix[i] = 0xff
		}
	}
	dec := tilestest.NewDecoder()
	buf := tiles.AppendResize(nil, 256, 192)
	buf, err := vc.enc.Encode(buf, &vc.mirror, vc.mirror.Bounds(), vc.rc.Quality())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Apply(tiles.AppendFrameEnd(buf, 1)); err != nil {
		t.Fatal(err)
	}
	if !vc.enc.Lossy() {
		t.Fatal("noise sent at the paced quality is not lossy")
	}
	if vc.paceRefine(true, nil) {
		t.Fatal("paceRefine left the whole refinement to one frame")
	}
	budget := pacing.Budget(vc.rc.Goodput() * 8)
	frames := 0
	for vc.refining() {
		frames++
		if frames > 1000 {
			t.Fatal("the refinement does not end")
		}
		out, n, err := vc.appendRefinement(nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 || len(out) == 0 {
			t.Fatal("a refinement under way appended nothing")
		}
		if len(out) > budget+4096 {
			t.Errorf("frame %d: %d bytes for a budget of %d", frames, len(out), budget)
		}
		if _, err := dec.Apply(tiles.AppendFrameEnd(out, uint32(frames+1))); err != nil {
			t.Fatal(err)
		}
	}
	if frames < 5 {
		t.Errorf("the refinement took %d frames", frames)
	}
	if !dec.Canvas.Equal(&vc.mirror) {
		t.Error("the browser's picture is not exact after the paced refinement")
	}
	// A budget already spent on the frame's damage adds no piece.
	vc.refiner.Start()
	if _, err := vc.enc.Encode(nil, &vc.mirror, framebuffer.Rect{W: 64, H: 64}, vc.rc.Quality()); err != nil {
		t.Fatal(err)
	}
	if out, n, _ := vc.appendRefinement(nil, budget); n != 0 || len(out) != 0 {
		t.Errorf("%d bytes of refinement after the budget was spent", len(out))
	}

	vc.rc = ratectl.New()
	if !vc.paceRefine(true, nil) {
		t.Error("without a measured goodput the refinement is not sendFrame's")
	}
}

func TestSlowStart(t *testing.T) {
	vc := &viewerConn{rc: ratectl.New()}
	if vc.slowStart() {
		t.Error("slow start with nothing in flight")
	}
	vc.inflight = []inflightFrame{{n: 1, bytes: 1000}}
	if vc.slowStart() {
		t.Error("slow start behind a small frame")
	}
	vc.inflight = append(vc.inflight, inflightFrame{n: 2, bytes: ratectl.SlowStartBytes})
	if !vc.slowStart() {
		t.Error("no slow start behind a large frame on an unmeasured link")
	}
	vc.rc = measured(1 << 20)
	if vc.slowStart() {
		t.Error("slow start once the goodput is measured")
	}
}

// measured returns a rate controller whose acks measured a goodput of bw
// bytes per second.
func measured(bw float64) *ratectl.Controller {
	c := ratectl.New()
	c.Acked(1000, 10*time.Millisecond)
	n := 200 << 10
	c.Acked(n, 10*time.Millisecond+time.Duration(float64(n)/bw*float64(time.Second))-time.Millisecond)
	if g := c.Goodput(); g < bw*0.99 || g > bw*1.01 {
		panic(fmt.Sprintf("measured goodput %.0f, want %.0f", g, bw))
	}
	return c
}
