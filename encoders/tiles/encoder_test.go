package tiles_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"kvmgate/encoders/tiles"
	"kvmgate/encoders/tiles/tilestest"
	"kvmgate/framebuffer"
)

// textConsole paints a VGA-text-like screen: 9×16 cells of a few colours.
func textConsole(w, h int, seed uint64) *framebuffer.Canvas {
	c, _ := framebuffer.NewCanvas(w, h)
	rng := rand.New(rand.NewPCG(seed, 1))
	fg := []uint32{0xffaaaaaa, 0xffffffff, 0xff55ff55, 0xff5555ff}
	for cy := 0; cy+16 <= h; cy += 16 {
		for cx := 0; cx+9 <= w; cx += 9 {
			if rng.IntN(3) == 0 {
				continue
			}
			col := fg[rng.IntN(len(fg))]
			for y := 2; y < 14; y++ {
				bits := rng.Uint32()
				for x := 1; x < 8; x++ {
					if bits&(1<<x) != 0 {
						c.Fill(framebuffer.Rect{X: cx + x, Y: cy + y, W: 1, H: 1}, col)
					}
				}
			}
		}
	}
	return c
}

// photo paints smooth noise: many colours, little exact repetition.
func photo(c *framebuffer.Canvas, r framebuffer.Rect, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 2))
	for y := r.Y; y < r.Y+r.H; y++ {
		row := c.Row(r.X, y, r.W)
		for x := 0; x < r.W; x++ {
			fx, fy := float64(r.X+x), float64(y)
			row[4*x] = byte(128 + 100*math.Sin(fx/23+fy/41) + float64(rng.IntN(9)))
			row[4*x+1] = byte(128 + 100*math.Cos(fx/37-fy/19) + float64(rng.IntN(9)))
			row[4*x+2] = byte(128 + 90*math.Sin((fx+fy)/29) + float64(rng.IntN(9)))
			row[4*x+3] = 0xff
		}
	}
}

// desktop paints a desktop: a photo wallpaper, flat windows with text.
func desktop(w, h int, seed uint64) *framebuffer.Canvas {
	c, _ := framebuffer.NewCanvas(w, h)
	photo(c, c.Bounds(), seed)
	win := framebuffer.Rect{X: w / 8, Y: h / 8, W: w / 2, H: h / 2}
	c.Fill(win, 0xfff0f0f0)
	c.Fill(framebuffer.Rect{X: win.X, Y: win.Y, W: win.W, H: 24}, 0xff803010)
	txt := textConsole(win.W-20, win.H-40, seed)
	for y := 0; y < txt.H; y++ {
		row := c.Row(win.X+10, win.Y+30+y, txt.W)
		src := txt.Row(0, y, txt.W)
		for i := 0; i < len(row); i += 4 {
			if src[i] != 0 {
				copy(row[i:i+4], []byte{20, 20, 20, 255})
			}
		}
	}
	return c
}

func rc(x, y, w, h int) framebuffer.Rect { return framebuffer.Rect{X: x, Y: y, W: w, H: h} }

func decodeAll(t *testing.T, d *tilestest.Decoder, msg []byte) {
	t.Helper()
	if _, err := d.Apply(msg); err != nil {
		t.Fatal(err)
	}
}

func psnr(a, b *framebuffer.Canvas, r framebuffer.Rect) float64 {
	var se float64
	for y := r.Y; y < r.Y+r.H; y++ {
		ra, rb := a.Row(r.X, y, r.W), b.Row(r.X, y, r.W)
		for i := range ra {
			if i%4 == 3 {
				continue
			}
			d := float64(ra[i]) - float64(rb[i])
			se += d * d
		}
	}
	if se == 0 {
		return math.Inf(1)
	}
	mse := se / float64(r.Area()*3)
	return 10 * math.Log10(255*255/mse)
}

func TestEncodeLosslessRoundTrip(t *testing.T) {
	solid, _ := framebuffer.NewCanvas(300, 200)
	solid.Fill(solid.Bounds(), 0xff336699)
	cases := []struct {
		name  string
		src   *framebuffer.Canvas
		rects []framebuffer.Rect
	}{
		{"text full", textConsole(720, 400, 1), []framebuffer.Rect{rc(0, 0, 720, 400)}},
		{"text partial unaligned", textConsole(720, 400, 2), []framebuffer.Rect{rc(0, 0, 720, 400), rc(5, 7, 131, 77), rc(700, 390, 20, 10)}},
		{"desktop full", desktop(640, 480, 3), []framebuffer.Rect{rc(0, 0, 640, 480)}},
		{"photo tiles", desktop(257, 130, 4), []framebuffer.Rect{rc(0, 0, 257, 130), rc(63, 63, 3, 3)}},
		{"solid", solid, []framebuffer.Rect{rc(0, 0, 300, 200)}},
		{"one pixel", textConsole(1, 1, 5), []framebuffer.Rect{rc(0, 0, 1, 1)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := tiles.NewEncoder()
			d := tilestest.NewDecoder()
			msg := tiles.AppendResize(nil, tc.src.W, tc.src.H)
			e.ForgetLossy()
			for _, r := range tc.rects {
				var err error
				if msg, err = e.Encode(msg, tc.src, r, tiles.Quality{}); err != nil {
					t.Fatal(err)
				}
				// Decode each record batch separately: the stream must be
				// flushed at record boundaries.
				decodeAll(t, d, msg)
				msg = msg[:0]
			}
			if !d.Canvas.Equal(tc.src) {
				t.Fatalf("decoded canvas differs from source (psnr %.1f dB)", psnr(&d.Canvas, tc.src, tc.src.Bounds()))
			}
			if e.Lossy() {
				t.Error("lossless encode left lossy areas")
			}
		})
	}
}

func TestEncodeRecordChoice(t *testing.T) {
	solid, _ := framebuffer.NewCanvas(256, 128)
	solid.Fill(solid.Bounds(), 0xff000000)
	pic, _ := framebuffer.NewCanvas(256, 128)
	photo(pic, pic.Bounds(), 9)
	cases := []struct {
		name    string
		src     *framebuffer.Canvas
		q       tiles.Quality
		want    byte
		wantNot byte
		records int // exact record count, or -1
	}{
		{"solid merges to one fill per tile row", solid, tiles.Quality{}, tiles.RecordFill, 0, 2},
		{"text is deflate", textConsole(256, 128, 1), tiles.Quality{}, tiles.RecordDeflate, tiles.RecordJPEG, -1},
		{"photo lossless is deflate", pic, tiles.Quality{}, tiles.RecordDeflate, tiles.RecordJPEG, -1},
		{"photo lossy is jpeg", pic, tiles.Quality{Lossy: true, JPEG: 60}, tiles.RecordJPEG, tiles.RecordDeflate, 2},
		{"text stays lossless when lossy allowed", textConsole(256, 128, 1), tiles.Quality{Lossy: true}, tiles.RecordDeflate, tiles.RecordJPEG, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := tiles.NewEncoder()
			msg := tiles.AppendResize(nil, tc.src.W, tc.src.H)
			msg, err := e.Encode(msg, tc.src, tc.src.Bounds(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			d := tilestest.NewDecoder()
			decodeAll(t, d, msg)
			if d.Records[tc.want] == 0 {
				t.Errorf("no 0x%02x records: %v", tc.want, d.Records)
			}
			if tc.wantNot != 0 && d.Records[tc.wantNot] != 0 {
				t.Errorf("unexpected 0x%02x records: %v", tc.wantNot, d.Records)
			}
			if tc.records >= 0 && d.Records[tc.want] != tc.records {
				t.Errorf("got %d 0x%02x records, want %d", d.Records[tc.want], tc.want, tc.records)
			}
			if p := psnr(&d.Canvas, tc.src, tc.src.Bounds()); p < 30 {
				t.Errorf("psnr %.1f dB < 30", p)
			}
		})
	}
}

func TestLossyRefinement(t *testing.T) {
	src := desktop(640, 480, 7)
	e := tiles.NewEncoder()
	d := tilestest.NewDecoder()
	msg := tiles.AppendResize(nil, src.W, src.H)
	msg, err := e.Encode(msg, src, src.Bounds(), tiles.Quality{Lossy: true, JPEG: 50})
	if err != nil {
		t.Fatal(err)
	}
	decodeAll(t, d, msg)
	if !e.Lossy() || d.Records[tiles.RecordJPEG] == 0 {
		t.Fatalf("expected lossy output, records %v", d.Records)
	}
	if d.Canvas.Equal(src) {
		t.Fatal("lossy output is exact")
	}
	// A move of lossy pixels keeps them lossy at the destination.
	m := framebuffer.Move{Src: framebuffer.Rect{X: 0, Y: 0, W: 64, H: 32}, DstX: 320, DstY: 80}
	src.Move(m.Src, m.DstX, m.DstY)
	e.Moved(m)
	decodeAll(t, d, tiles.AppendCopy(nil, m))

	rects := e.LossyRects(nil)
	msg = msg[:0]
	for _, r := range rects {
		if msg, err = e.Encode(msg, src, r, tiles.Quality{}); err != nil {
			t.Fatal(err)
		}
	}
	decodeAll(t, d, msg)
	if e.Lossy() {
		t.Errorf("still lossy after refinement: %v", e.LossyRects(nil))
	}
	if !d.Canvas.Equal(src) {
		t.Fatalf("refined canvas differs (psnr %.1f dB)", psnr(&d.Canvas, src, src.Bounds()))
	}
}

func TestCursorRecord(t *testing.T) {
	pix := make([]byte, 3*2*4)
	for i := range pix {
		pix[i] = byte(i)
	}
	cases := []struct {
		name string
		c    *framebuffer.Cursor
		hide bool
	}{
		{"shape", &framebuffer.Cursor{W: 3, H: 2, HotX: 1, HotY: 1, Pix: pix}, false},
		{"nil hides", nil, true},
		{"wrong pixel count hides", &framebuffer.Cursor{W: 4, H: 2, Pix: pix}, true},
		{"hotspot outside hides", &framebuffer.Cursor{W: 3, H: 2, HotX: 3, Pix: pix}, true},
		{"too big hides", &framebuffer.Cursor{W: 300, H: 300, Pix: make([]byte, 300*300*4)}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := tilestest.NewDecoder()
			d.Cursor = &framebuffer.Cursor{}
			decodeAll(t, d, tiles.AppendCursor(nil, tc.c))
			if tc.hide {
				if d.Cursor != nil {
					t.Fatalf("cursor %+v, want hidden", d.Cursor)
				}
				return
			}
			if d.Cursor == nil || d.Cursor.W != 3 || d.Cursor.H != 2 || d.Cursor.HotX != 1 || string(d.Cursor.Pix) != string(pix) {
				t.Fatalf("cursor %+v, want %+v", d.Cursor, tc.c)
			}
		})
	}
}

func TestDecoderRejectsBadRecords(t *testing.T) {
	cases := []struct {
		name string
		msg  []byte
	}{
		{"fill outside", tiles.AppendFill(tiles.AppendResize(nil, 10, 10), framebuffer.Rect{X: 5, Y: 5, W: 10, H: 1}, 1, 2, 3)},
		{"truncated", tiles.AppendResize(nil, 10, 10)[:3]},
		{"unknown type", []byte{0x7f}},
	}
	for _, tc := range cases {
		if _, err := tilestest.NewDecoder().Apply(tc.msg); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func benchmarkEncode(b *testing.B, frames []*framebuffer.Canvas, q tiles.Quality) {
	e := tiles.NewEncoder()
	var buf []byte
	var total int
	px := frames[0].W * frames[0].H
	b.SetBytes(int64(px * 4))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		src := frames[i%len(frames)]
		var err error
		buf, err = e.Encode(buf[:0], src, src.Bounds(), q)
		if err != nil {
			b.Fatal(err)
		}
		total += len(buf)
	}
	b.ReportMetric(float64(total)/float64(b.N), "bytes/frame")
	b.ReportMetric(float64(px)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpixel/s")
}

func BenchmarkEncodeTextConsole(b *testing.B) {
	benchmarkEncode(b, []*framebuffer.Canvas{textConsole(720, 400, 1), textConsole(720, 400, 2)}, tiles.Quality{})
}

func BenchmarkEncodeDesktopLossless(b *testing.B) {
	benchmarkEncode(b, []*framebuffer.Canvas{desktop(1280, 800, 1), desktop(1280, 800, 2)}, tiles.Quality{})
}

func BenchmarkEncodeDesktopLossy(b *testing.B) {
	benchmarkEncode(b, []*framebuffer.Canvas{desktop(1280, 800, 1), desktop(1280, 800, 2)}, tiles.Quality{Lossy: true, JPEG: 70})
}

// TestPackedIndexed round-trips tiles of every palette size around the
// packed formats' limits, with widths that leave rows padded.
func TestPackedIndexed(t *testing.T) {
	for _, colours := range []int{2, 3, 4, 5, 16, 17, 200} {
		for _, w := range []int{1, 7, 9, 63} {
			c, _ := framebuffer.NewCanvas(w, 13)
			used := map[int]bool{}
			for i := 0; i < len(c.Pix); i += 4 {
				k := (i/4*7 + i/4/w) % colours
				used[k] = true
				c.Pix[i], c.Pix[i+1], c.Pix[i+2] = byte(k), byte(k*3), 0x80
			}
			e, d := tiles.NewEncoder(), tilestest.NewDecoder()
			msg, err := e.Encode(tiles.AppendResize(nil, w, 13), c, c.Bounds(), tiles.Quality{})
			if err != nil {
				t.Fatal(err)
			}
			want := byte(tiles.FormatColumns)
			if len(used) > 16 {
				want = tiles.FormatIndexed
			}
			decodeAll(t, d, msg)
			if len(used) > 1 && (d.Formats[int(want)] != 1 || len(d.Formats) != 1) {
				t.Errorf("%d colours, width %d: deflate formats %v, want one of format %d", len(used), w, d.Formats, want)
			}
			if !d.Canvas.Equal(c) {
				t.Errorf("%d colours, width %d: decoded canvas differs", colours, w)
			}
		}
	}
}

// TestBatchPerEncode checks that one Encode call sends one batch record
// (copies queued by Copy first) whose data ends at a sync flush, and that
// Flush sends queued copies alone.
func TestBatchPerEncode(t *testing.T) {
	src := textConsole(720, 400, 7)
	src.Fill(rc(300, 0, 64, 400), 0xff204080) // fills between the deflate records
	e := tiles.NewEncoder()
	e.ForgetLossy()
	e.Copy(framebuffer.Move{Src: rc(0, 16, 720, 384), DstX: 0, DstY: 0})
	msg, err := e.Encode(nil, src, src.Bounds(), tiles.Quality{})
	if err != nil {
		t.Fatal(err)
	}
	if msg[0] != tiles.RecordBatch {
		t.Fatalf("record %#x, want a batch", msg[0])
	}
	p := 1
	_, k := binary.Uvarint(msg[p:])
	p += k
	n, k := binary.Uvarint(msg[p:])
	p += k
	// The batch holds the whole message; the sync flush's tail is left
	// out, and the decoder, which adds it back, needs every byte of the
	// records by then (it fails on a stream that needs more input).
	if p+int(n) != len(msg) {
		t.Fatalf("batch of %d bytes at %d in a %d-byte message", n, p, len(msg))
	}
	d := tilestest.NewDecoder()
	decodeAll(t, d, append(tiles.AppendResize(nil, src.W, src.H), msg...))
	if !d.Canvas.Equal(src) {
		t.Fatal("decoded canvas differs")
	}
	if d.Records[tiles.RecordCopy] != 1 || d.Records[tiles.RecordFill] == 0 || d.Records[tiles.RecordDeflate] < 2 {
		t.Errorf("records in the batch: %v, want a copy, fills and several deflate records", d.Records)
	}
	if out, err := e.Flush(nil); err != nil || len(out) != 0 {
		t.Errorf("Flush with nothing queued: %d bytes, %v", len(out), err)
	}
	want := src.Clone()
	want.Move(rc(0, 0, 720, 16), 0, 384)
	e.Copy(framebuffer.Move{Src: rc(0, 0, 720, 16), DstX: 0, DstY: 384})
	out, err := e.Flush(nil)
	if err != nil || len(out) == 0 || out[0] != tiles.RecordBatch {
		t.Fatalf("Flush: %d bytes, %v", len(out), err)
	}
	decodeAll(t, d, out)
	if !d.Canvas.Equal(want) {
		t.Error("canvas after the flushed copy differs")
	}
}

// TestIndexedTilesMerge checks that a text line across many tiles goes out
// as one indexed record when its tiles' palettes together fit 16 colours,
// and as several when a tile has more.
func TestIndexedTilesMerge(t *testing.T) {
	line := textConsole(720, 16, 8) // background and four colours: 4 bits
	wide := line.Clone()
	for x := 0; x < 64; x++ { // one tile with 64 colours: format 1
		wide.Fill(rc(320+x, 3, 1, 1), 0xff000000|uint32(x*4)<<8)
	}
	cases := []struct {
		name    string
		src     *framebuffer.Canvas
		records int
	}{
		{"text line", line, 1},
		{"text line with a many-colour tile", wide, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, d := tiles.NewEncoder(), tilestest.NewDecoder()
			msg, err := e.Encode(tiles.AppendResize(nil, 720, 16), tc.src, tc.src.Bounds(), tiles.Quality{})
			if err != nil {
				t.Fatal(err)
			}
			decodeAll(t, d, msg)
			if !d.Canvas.Equal(tc.src) {
				t.Fatal("decoded canvas differs")
			}
			if got := d.Records[tiles.RecordDeflate]; got != tc.records {
				t.Errorf("%d deflate records, want %d", got, tc.records)
			}
		})
	}
}
