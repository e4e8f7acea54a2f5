package autoswitch

import (
	"testing"
	"time"

	"kvmgate/framebuffer"
)

// TestActivity: what counts as sustained motion and as a still screen.
func TestActivity(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	damage := func(w, h int) *framebuffer.Update {
		return &framebuffer.Update{Damage: []framebuffer.Rect{{W: w, H: h}}}
	}
	cases := []struct {
		name    string
		updates map[int]*framebuffer.Update // at ms
		at      int
		moving  bool
	}{
		{"a quarter of the screen at 30 fps", every(0, 700, 33, damage(320, 200)), 700, true},
		{"the same, not yet long enough", every(0, 250, 33, damage(320, 200)), 250, false},
		{"a small box at 10 fps", every(0, 2000, 100, damage(24, 24)), 2000, false},
		{"one full redraw then a short burst", merge(map[int]*framebuffer.Update{0: damage(640, 400)}, every(450, 550, 33, damage(320, 200))), 550, false},
		{"slow updates of half the screen (4/s)", every(0, 1000, 250, damage(320, 400)), 1000, true},
		{"a quarter of the screen at 30 fps with a clock in the first third", merge(map[int]*framebuffer.Update{60: damage(152, 16)}, every(250, 600, 33, damage(320, 200))), 600, false},
		{"typing at 30 characters a second", every(0, 2000, 33, damage(8, 16)), 2000, false},
		{"moves only (scrolling on tiles)", every(0, 1000, 33, &framebuffer.Update{Moves: []framebuffer.Move{{Src: framebuffer.Rect{Y: 20, W: 640, H: 380}}}}), 1000, false},
	}
	for _, tc := range cases {
		var a Activity
		a.Note(t0, &framebuffer.Update{Resized: true, Width: 640, Height: 400})
		for at := 0; at <= tc.at; at++ {
			if u := tc.updates[at]; u != nil {
				a.Note(ms(at), u)
			}
		}
		if got := a.Moving(ms(tc.at)); got != tc.moving {
			t.Errorf("%s: moving = %v, want %v", tc.name, got, tc.moving)
		}
	}

	// Suspected motion (tiles go lossy for photo-like areas): two large
	// updates within the window, as of the last update.
	var s Activity
	s.Note(t0, &framebuffer.Update{Resized: true, Width: 640, Height: 400})
	s.Note(ms(100), damage(320, 200))
	if s.Suspect() {
		t.Error("one large update: suspected motion")
	}
	s.Note(ms(150), damage(320, 200))
	if !s.Suspect() {
		t.Error("two large updates 50 ms apart: no suspected motion")
	}
	s.Note(ms(2000), damage(8, 16))
	if s.Suspect() {
		t.Error("two large updates 2 s ago: still suspected motion")
	}

	// Quiet: a blinking text cursor, a clock, the pointer and scrolling do
	// not keep a screen from counting as still; a larger change does.
	var a Activity
	a.Note(t0, &framebuffer.Update{Resized: true, Width: 640, Height: 400})
	a.Note(ms(300), damage(320, 200))
	for at := 400; at < 3000; at += 250 {
		a.Note(ms(at), damage(8, 16))                                              // cursor blink
		a.Note(ms(at+10), damage(152, 16))                                         // clock
		a.Note(ms(at+20), &framebuffer.Update{CursorChanged: true})                // pointer
		a.Note(ms(at+30), &framebuffer.Update{Moves: make([]framebuffer.Move, 1)}) // scroll
	}
	if got, want := a.StillAt(), ms(300).Add(Still); !got.Equal(want) {
		t.Errorf("still at %v, want %v (the last large change plus %v)", got, want, Still)
	}
}

// TestSwitch: a viewer on tiles goes to video on sustained motion, and
// back once the screen has been still for Still with nothing pending.
func TestSwitch(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	var a Activity
	a.Reset(t0)
	a.Note(t0, &framebuffer.Update{Resized: true, Width: 640, Height: 400})
	if a.Switch(ms(10), false, false) {
		t.Fatal("switched to video on a resize alone")
	}
	at := 0
	for ; at <= 1000 && !a.Switch(ms(at), false, true); at += 33 {
		a.Note(ms(at), &framebuffer.Update{Damage: []framebuffer.Rect{{W: 320, H: 200}}})
	}
	if at > 1000 || at < int(Window/time.Millisecond)*2/3 {
		t.Fatalf("switched to video at %d ms of motion", at)
	}
	last := at
	for ; at < last+300; at += 33 {
		a.Note(ms(at), &framebuffer.Update{Damage: []framebuffer.Rect{{W: 320, H: 200}}})
		if a.Switch(ms(at), true, false) {
			t.Fatalf("back to tiles at %d ms during motion", at)
		}
	}
	quiet := at - 33
	if a.Switch(ms(quiet).Add(Still), true, true) {
		t.Error("back to tiles with an update pending")
	}
	if a.Switch(ms(quiet).Add(Still-time.Millisecond), true, false) {
		t.Error("back to tiles before the screen was still for Still")
	}
	if !a.Switch(ms(quiet).Add(Still), true, false) {
		t.Error("still on video after the screen was still for Still")
	}
}

// every returns u at from, from+step, ... up to to.
func every(from, to, step int, u *framebuffer.Update) map[int]*framebuffer.Update {
	m := map[int]*framebuffer.Update{}
	for at := from; at <= to; at += step {
		m[at] = u
	}
	return m
}

func merge(a, b map[int]*framebuffer.Update) map[int]*framebuffer.Update {
	for k, v := range b {
		a[k] = v
	}
	return a
}
