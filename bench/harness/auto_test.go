package harness

import (
	"testing"
	"time"

	"kvmgate/framebuffer"
)

// TestAutoSwitches drives the Auto configuration's codec the way the
// sender does: a quiet screen stays on tiles, half the screen changing at
// 30 frames a second moves it to video, and once the screen has been quiet
// for autoswitch.Still it comes back to tiles with an exact picture.
func TestAutoSwitches(t *testing.T) {
	if autoVideoCodec() == "" {
		t.Log("no video codec built in (tags libvpx, openh264): checking that Auto reports it")
		if _, r, err := newSender(&group{sim: framebuffer.New()}, Workload{}, Auto, Profiles[0], Options{}); err != nil || r.Unavailable == "" {
			t.Fatalf("Auto without video: err %v, unavailable %q", err, r.Unavailable)
		}
		return
	}
	c, err := newAutoCodec(70)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	fb := framebuffer.New()
	v := fb.Subscribe()
	defer v.Close()
	src, _ := framebuffer.NewCanvas(320, 240)
	var mirror framebuffer.Canvas
	var frameNo uint32
	send := func(at time.Duration, refine bool) {
		t.Helper()
		frameNo++
		buf, err := c.encode(v, &mirror, at, refine, 100e6, frameNo)
		if err != nil {
			t.Fatal(err)
		}
		if buf != nil {
			if _, err := c.decode(buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	paint := func(n int, r framebuffer.Rect) {
		for y := r.Y; y < r.Y+r.H; y++ {
			row := src.Row(r.X, y, r.W)
			for x := range r.W {
				row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = byte(x*3+n*7), byte(y*5-n), byte(x*y+n), 0xff
			}
		}
		var b framebuffer.Batch
		b.Damage(r)
		fb.Publish(src, &b)
	}
	ms := time.Millisecond
	paint(0, src.Bounds())
	send(0, false)
	if c.onVideo {
		t.Fatal("on video after the first frame")
	}
	at := 33 * ms
	for ; at < 2*time.Second && !c.onVideo; at += 33 * ms {
		paint(int(at/ms), framebuffer.Rect{W: 320, H: 120})
		send(at, false)
	}
	if !c.onVideo || len(c.switches) != 1 {
		t.Fatalf("no switch to video after %v of motion (%d switches)", at, len(c.switches))
	}
	t.Logf("to video after %v of motion", c.switches[0])
	for end := at + 300*ms; at < end; at += 33 * ms {
		paint(int(at/ms), framebuffer.Rect{W: 320, H: 120})
		send(at, false)
	}
	last := at - 33*ms
	if w := c.wakeAt(); w < last+time.Second-ms || w > last+time.Second+ms {
		t.Fatalf("wakes at %v, want the last change %v plus a second", w, last)
	}
	t.Logf("back to tiles %v after the last change", c.wakeAt()-last)
	send(c.wakeAt(), true)
	if c.onVideo || len(c.switches) != 2 {
		t.Fatalf("still on video after a quiet second (%d switches)", len(c.switches))
	}
	if c.wakeAt() >= 0 {
		t.Error("a tiles viewer asks to be woken")
	}
	for i := 0; c.needsRefine() || c.refining(); i++ {
		if i > 100 {
			t.Fatal("the refinement does not end")
		}
		send(at, true)
		at += 100 * ms
	}
	if !c.picture().Equal(src) {
		t.Error("the browser's picture is not exact back on tiles")
	}
}
