package tiles_test

import (
	"testing"

	"kvmgate/encoders/tiles"
	"kvmgate/encoders/tiles/tilestest"
	"kvmgate/framebuffer"
)

// scrolled returns a copy of c whose rows y0..y1 moved up by dy (down when
// negative), the freed rows filled from fresh text of the given seed.
func scrolled(c *framebuffer.Canvas, y0, y1, dy int, seed uint64) *framebuffer.Canvas {
	n := c.Clone()
	fresh := textConsole(c.W, c.H, seed)
	if dy > 0 {
		n.Move(rc(0, y0+dy, c.W, y1-y0-dy), 0, y0)
		n.CopyFrom(fresh, rc(0, y1-dy, c.W, dy))
	} else {
		n.Move(rc(0, y0, c.W, y1-y0+dy), 0, y0-dy)
		n.CopyFrom(fresh, rc(0, y0, c.W, -dy))
	}
	return n
}

// firstFrame sends a resize and all of c, as server/ws.go does for a new
// viewer, and returns the encoder and the decoder that received it.
func firstFrame(t *testing.T, c *framebuffer.Canvas) (*tiles.Encoder, *tilestest.Decoder) {
	t.Helper()
	e, d := tiles.NewEncoder(), tilestest.NewDecoder()
	msg := tiles.AppendResize(nil, c.W, c.H)
	e.ForgetLossy()
	msg, err := e.Encode(msg, c, c.Bounds(), tiles.Quality{})
	if err != nil {
		t.Fatal(err)
	}
	decodeAll(t, d, msg)
	return e, d
}

func TestScrollDetection(t *testing.T) {
	a := textConsole(720, 400, 1)
	blink := a.Clone()
	blink.Fill(rc(9*3, 16*5+14, 9, 2), 0xffaaaaaa)
	cases := []struct {
		name      string
		next      *framebuffer.Canvas
		damage    framebuffer.Rect
		copies    int
		maxBytes  int
		maxPixels int
	}{
		{"scroll up one line", scrolled(a, 0, 400, 16, 9), a.Bounds(), 1, 3500, 720 * 16},
		{"scroll down three rows", scrolled(a, 0, 400, -3, 9), a.Bounds(), 1, 900, 720 * 3},
		{"scroll region above a status line", scrolled(a, 0, 384, 32, 9), a.Bounds(), 1, 6500, 720 * 32},
		{"cursor blink in full damage", blink, a.Bounds(), 0, 60, 9 * 2},
		{"nothing changed", a, a.Bounds(), 0, 0, 0},
		{"damage smaller than the scroll", scrolled(a, 0, 400, 16, 9), rc(0, 64, 128, 128), 1, 1000, 128 * 16},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, d := firstFrame(t, a)
			copies, px := e.Stats.Copies, e.Stats.Pixels
			msg, err := e.Encode(nil, tc.next, tc.damage, tiles.Quality{})
			if err != nil {
				t.Fatal(err)
			}
			decodeAll(t, d, msg)
			want := a.Clone()
			want.CopyFrom(tc.next, tc.damage)
			if !d.Canvas.Equal(want) {
				t.Fatalf("decoded canvas differs (psnr %.1f dB)", psnr(&d.Canvas, want, want.Bounds()))
			}
			if got := e.Stats.Copies - copies; got != tc.copies {
				t.Errorf("copy records: got %d, want %d", got, tc.copies)
			}
			if len(msg) > tc.maxBytes {
				t.Errorf("sent %d bytes, want at most %d", len(msg), tc.maxBytes)
			}
			if got := e.Stats.Pixels - px; got > tc.maxPixels {
				t.Errorf("encoded %d pixels, want at most %d", got, tc.maxPixels)
			}
		})
	}
}

// TestShadowFollowsMovesAndResizes checks that what the encoder skips is
// what the browser really has: after copy records the caller made, after a
// resize (black canvas), and with lossy areas (never skipped).
func TestShadowFollowsMovesAndResizes(t *testing.T) {
	a := textConsole(320, 240, 3)
	e, d := firstFrame(t, a)

	// The backend's CopyRect: the caller sends the copy and tells Moved.
	m := framebuffer.Move{Src: rc(0, 16, 320, 224), DstX: 0, DstY: 0}
	b := a.Clone()
	b.Move(m.Src, m.DstX, m.DstY)
	msg := tiles.AppendCopy(nil, m)
	e.Moved(m)
	msg, err := e.Encode(msg, b, b.Bounds(), tiles.Quality{})
	if err != nil {
		t.Fatal(err)
	}
	decodeAll(t, d, msg)
	if !d.Canvas.Equal(b) {
		t.Fatal("after a move: decoded canvas differs")
	}

	// A resize: the browser's canvas is black, black rows may be skipped
	// but nothing else.
	c := textConsole(400, 300, 4)
	msg = tiles.AppendResize(nil, c.W, c.H)
	e.ForgetLossy()
	if msg, err = e.Encode(msg, c, c.Bounds(), tiles.Quality{}); err != nil {
		t.Fatal(err)
	}
	decodeAll(t, d, msg)
	if !d.Canvas.Equal(c) {
		t.Fatal("after a resize: decoded canvas differs")
	}

	// A lossy picture, then the same picture losslessly: the refinement
	// must not be skipped although the encoder's copy already matches.
	p := desktop(400, 300, 5)
	if msg, err = e.Encode(nil, p, p.Bounds(), tiles.Quality{Lossy: true}); err != nil {
		t.Fatal(err)
	}
	decodeAll(t, d, msg)
	msg = nil
	for _, r := range e.LossyRects(nil) {
		if msg, err = e.Encode(msg, p, r, tiles.Quality{}); err != nil {
			t.Fatal(err)
		}
	}
	decodeAll(t, d, msg)
	if !d.Canvas.Equal(p) {
		t.Fatalf("after refinement: decoded canvas differs (psnr %.1f dB)", psnr(&d.Canvas, p, p.Bounds()))
	}
}

// FuzzScrollRoundTrip scrolls and edits a text screen in arbitrary ways and
// checks that the decoder follows exactly.
func FuzzScrollRoundTrip(f *testing.F) {
	f.Add(uint16(16), uint16(0), uint16(400), int8(16), uint16(0), uint16(0), uint16(720), uint16(400))
	f.Add(uint16(3), uint16(40), uint16(100), int8(-7), uint16(5), uint16(6), uint16(100), uint16(90))
	f.Fuzz(func(t *testing.T, seed, y0, y1 uint16, dy int8, dx0, dy0, dw, dh uint16) {
		a := textConsole(200, 150, uint64(seed))
		e, d := firstFrame(t, a)
		lo, hi := int(y0)%150, int(y1)%151
		if lo > hi {
			lo, hi = hi, lo
		}
		b := a
		if k := int(dy); k != 0 && hi-lo > abs(k) {
			b = scrolled(a, lo, hi, k, uint64(seed)+1)
		}
		r := rc(int(dx0)%200, int(dy0)%150, int(dw)%201, int(dh)%151)
		msg, err := e.Encode(nil, b, r, tiles.Quality{})
		if err != nil {
			t.Fatal(err)
		}
		decodeAll(t, d, msg)
		want := a.Clone()
		want.CopyFrom(b, r.Intersect(b.Bounds()))
		if !d.Canvas.Equal(want) {
			t.Fatal("decoded canvas differs")
		}
	})
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
