package framebuffer

import (
	"math/rand"
	"testing"
)

func paint(c *Canvas, r Rect, seed byte) {
	for y := r.Y; y < r.Y+r.H; y++ {
		row := c.Row(r.X, y, r.W)
		for i := 0; i < len(row); i += 4 {
			row[i], row[i+1], row[i+2], row[i+3] = seed, byte(y), byte(i), 0xff
		}
	}
}

func TestDamageRectsCoverExactlyTheDirtyTiles(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for iter := 0; iter < 200; iter++ {
		w, h := 1+rng.Intn(300), 1+rng.Intn(200)
		var d Damage
		d.Reset(w, h)
		want := make([]bool, w*h) // pixel-level: tile coverage of added rects
		for k := 0; k < rng.Intn(8); k++ {
			r := Rect{rng.Intn(w+20) - 10, rng.Intn(h+20) - 10, rng.Intn(80), rng.Intn(80)}
			d.Add(r)
			c := r.Intersect(Rect{0, 0, w, h})
			if c.Empty() {
				continue
			}
			for ty := c.Y / TileSize; ty <= (c.Y+c.H-1)/TileSize; ty++ {
				for tx := c.X / TileSize; tx <= (c.X+c.W-1)/TileSize; tx++ {
					for y := ty * TileSize; y < min(h, (ty+1)*TileSize); y++ {
						for x := tx * TileSize; x < min(w, (tx+1)*TileSize); x++ {
							want[y*w+x] = true
						}
					}
				}
			}
		}
		got := make([]bool, w*h)
		for _, r := range d.Rects(nil) {
			if !r.In(Rect{0, 0, w, h}) {
				t.Fatalf("%dx%d: rect %v outside screen", w, h, r)
			}
			for y := r.Y; y < r.Y+r.H; y++ {
				for x := r.X; x < r.X+r.W; x++ {
					if got[y*w+x] {
						t.Fatalf("%dx%d: rects overlap at %d,%d", w, h, x, y)
					}
					got[y*w+x] = true
				}
			}
		}
		for i := range want {
			if want[i] != got[i] {
				t.Fatalf("%dx%d: pixel %d,%d dirty=%v, rects cover=%v", w, h, i%w, i/w, want[i], got[i])
			}
		}
	}
}

func TestViewerMirrorFollowsPublishedPixels(t *testing.T) {
	fb := New()
	src, _ := NewCanvas(200, 120)
	var b Batch
	fb.Publish(src, &b)
	v := fb.Subscribe()
	defer v.Close()
	var mirror Canvas
	u := v.Take(&mirror)
	if !u.Resized || u.Width != 200 || u.Height != 120 {
		t.Fatalf("first Take = %+v, want a full 200x120 frame", u)
	}
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 100; i++ {
		r := Rect{rng.Intn(190), rng.Intn(110), 1 + rng.Intn(10), 1 + rng.Intn(10)}
		paint(src, r, byte(i))
		b.Damage(r)
		if i%3 == 0 {
			fb.Publish(src, &b)
		}
		if i%7 == 0 {
			v.Take(&mirror)
		}
	}
	fb.Publish(src, &b)
	v.Take(&mirror)
	if !mirror.Equal(src) {
		t.Fatal("viewer mirror differs from the backend canvas after Take")
	}
}

func TestMovesAreHintsOnlyWithoutPendingDamage(t *testing.T) {
	fb := New()
	src, _ := NewCanvas(64, 64)
	var b Batch
	fb.Publish(src, &b)
	v := fb.Subscribe()
	var mirror Canvas
	v.Take(&mirror)

	src.Move(Rect{0, 0, 16, 16}, 32, 32)
	b.Move(Rect{0, 0, 16, 16}, 32, 32)
	fb.Publish(src, &b)
	u := v.Take(&mirror)
	if len(u.Moves) != 1 || len(u.Damage) != 0 {
		t.Fatalf("clean viewer: moves=%v damage=%v, want one move and no damage", u.Moves, u.Damage)
	}

	b.Damage(Rect{0, 0, 4, 4})
	b.Move(Rect{0, 0, 16, 16}, 32, 0)
	fb.Publish(src, &b)
	u = v.Take(&mirror)
	if len(u.Moves) != 0 {
		t.Fatalf("move after damage must become damage, got moves %v", u.Moves)
	}
	if len(u.Damage) != 2 {
		t.Fatalf("damage = %v, want the painted tile and the move's destination", u.Damage)
	}
}

func TestResizeForcesFullFrame(t *testing.T) {
	fb := New()
	src, _ := NewCanvas(32, 32)
	var b Batch
	fb.Publish(src, &b)
	v := fb.Subscribe()
	var mirror Canvas
	v.Take(&mirror)
	src.Resize(1021, 765)
	paint(src, Rect{1000, 700, 21, 65}, 9)
	fb.Publish(src, &b)
	u := v.Take(&mirror)
	if !u.Resized || u.Width != 1021 || u.Height != 765 || !mirror.Equal(src) {
		t.Fatalf("after resize: %+v, mirror equal=%v", u, mirror.Equal(src))
	}
}

func TestSlowViewerStateStaysBounded(t *testing.T) {
	fb := New()
	src, _ := NewCanvas(640, 480)
	var b Batch
	fb.Publish(src, &b)
	slow := fb.Subscribe()
	var mirror Canvas
	slow.Take(&mirror)
	for i := 0; i < 10000; i++ {
		r := Rect{(i * 7) % 600, (i * 13) % 440, 40, 40}
		b.Damage(r)
		b.Move(Rect{0, 0, 8, 8}, 100, 100)
		fb.Publish(src, &b)
	}
	slow.mu.Lock()
	moves, tiles := len(slow.p.moves), len(slow.p.damage.dirty)
	slow.mu.Unlock()
	if moves > maxMoves || tiles != 40*30 {
		t.Fatalf("slow viewer holds %d moves and %d tiles; want ≤ %d and the fixed grid of 1200", moves, tiles, maxMoves)
	}
	select {
	case <-slow.Changed():
	default:
		t.Fatal("slow viewer was not signalled")
	}
}

func TestCanvasMoveOverlap(t *testing.T) {
	c, _ := NewCanvas(10, 10)
	for y := 0; y < 10; y++ {
		for x := 0; x < 10; x++ {
			c.Fill(Rect{x, y, 1, 1}, uint32(y*10+x)|0xff000000)
		}
	}
	ref := c.Clone()
	c.Move(Rect{0, 0, 8, 8}, 2, 2) // down-right, overlapping
	for y := 0; y < 8; y++ {
		for x := 0; x < 8; x++ {
			if c.At(x+2, y+2) != ref.At(x, y) {
				t.Fatalf("down-right move: pixel %d,%d wrong", x+2, y+2)
			}
		}
	}
	c = ref.Clone()
	c.Move(Rect{2, 2, 8, 8}, 0, 0) // up-left, overlapping
	for y := 0; y < 8; y++ {
		for x := 0; x < 8; x++ {
			if c.At(x, y) != ref.At(x+2, y+2) {
				t.Fatalf("up-left move: pixel %d,%d wrong", x, y)
			}
		}
	}
}

func TestCheckSizeRejectsHostileSizes(t *testing.T) {
	for _, s := range [][2]int{{65535, 65535}, {-1, 5}, {MaxDimension + 1, 1}, {16384, 16384}} {
		if CheckSize(s[0], s[1]) == nil {
			t.Errorf("CheckSize(%d,%d) accepted", s[0], s[1])
		}
	}
	if err := CheckSize(1920, 1080); err != nil {
		t.Errorf("CheckSize(1920,1080): %v", err)
	}
}

func BenchmarkPublishTake1080p(b *testing.B) {
	fb := New()
	src, _ := NewCanvas(1920, 1080)
	var batch Batch
	fb.Publish(src, &batch)
	v := fb.Subscribe()
	var mirror Canvas
	v.Take(&mirror)
	b.SetBytes(1920 * 1080 * 4)
	for i := 0; i < b.N; i++ {
		batch.Damage(src.Bounds())
		fb.Publish(src, &batch)
		v.Take(&mirror)
	}
}

func TestCapsChangesReachSubscribedViewers(t *testing.T) {
	f := New()
	f.SetPointer("absolute")
	v := f.Subscribe()
	var dst Canvas
	if u := v.Take(&dst); u.CapsChanged {
		t.Errorf("first Take reports caps %+v; viewers read Caps when they start", u.Caps)
	}
	if c := f.Caps(); c.Pointer != "absolute" || c.Resizable {
		t.Errorf("Caps %+v, want absolute, not resizable", c)
	}
	f.SetPointer("absolute") // no change, no event
	if u := v.Take(&dst); u.CapsChanged {
		t.Errorf("unchanged pointer reported as a change")
	}
	f.SetPointer("relative")
	f.SetResizable(true)
	select {
	case <-v.Changed():
	default:
		t.Fatal("a caps change did not signal the viewer")
	}
	u := v.Take(&dst)
	if !u.CapsChanged || u.Caps != (Caps{Pointer: "relative", Resizable: true}) || u.Empty() {
		t.Errorf("Take after changes: changed %v caps %+v empty %v", u.CapsChanged, u.Caps, u.Empty())
	}
	if u := v.Take(&dst); u.CapsChanged {
		t.Errorf("caps reported twice")
	}
}

func TestCursorPosCoalescesAndHides(t *testing.T) {
	f := New()
	var src Canvas
	src.Resize(64, 48)
	f.Publish(&src, &Batch{})
	v := f.Subscribe()
	defer v.Close()
	var mirror Canvas
	if u := v.Take(&mirror); u.CursorMoved {
		t.Fatalf("first Take reports a cursor position before any was set: %+v", u)
	}
	select {
	case <-v.Changed(): // Subscribe's signal
	default:
	}

	cur := &Cursor{W: 2, H: 2, HotX: 1, Pix: make([]byte, 16)}
	f.SetCursor(cur)
	for i := range 100 {
		f.SetCursorPos(i, 2*i)
	}
	select {
	case <-v.Changed():
	default:
		t.Fatal("SetCursorPos did not signal the viewer")
	}
	u := v.Take(&mirror)
	if !u.CursorMoved || u.CursorX != 99 || u.CursorY != 198 {
		t.Fatalf("after 100 moves: moved=%v at %d,%d, want the latest 99,198", u.CursorMoved, u.CursorX, u.CursorY)
	}
	if !u.CursorChanged || u.Cursor != cur {
		t.Fatalf("the shape set before the moves was not reported: %+v", u)
	}
	if u = v.Take(&mirror); !u.Empty() {
		t.Fatalf("a second Take is not empty: %+v", u)
	}

	// The same position again is no news.
	f.SetCursorPos(99, 198)
	if u = v.Take(&mirror); u.CursorMoved {
		t.Fatalf("an unchanged position was reported: %+v", u)
	}

	// Hiding is a nil shape; the position stays.
	f.SetCursor(nil)
	f.SetCursorPos(5, 6)
	u = v.Take(&mirror)
	if !u.CursorChanged || u.Cursor != nil || !u.CursorMoved || u.CursorX != 5 || u.CursorY != 6 {
		t.Fatalf("hide and move: %+v", u)
	}
	if x, y, ok := f.CursorPos(); !ok || x != 5 || y != 6 {
		t.Fatalf("CursorPos = %d,%d,%v", x, y, ok)
	}

	// A viewer that joins later starts with the current position.
	w := f.Subscribe()
	defer w.Close()
	if u = w.Take(&mirror); !u.Resized || !u.CursorMoved || u.CursorX != 5 || u.CursorY != 6 {
		t.Fatalf("a new viewer's first Take: %+v", u)
	}
}

// BenchmarkSetCursorPos measures a cursor move with four viewers
// subscribed (none taking): the cost a backend pays per CURSOR_MOVE.
func BenchmarkSetCursorPos(b *testing.B) {
	f := New()
	for range 4 {
		defer f.Subscribe().Close()
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.SetCursorPos(i&1023, i>>10&1023)
	}
}
