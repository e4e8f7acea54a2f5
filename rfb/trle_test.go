package rfb

import (
	"math/rand"
	"testing"

	"kvmgate/framebuffer"
)

func TestTRLERoundTrip(t *testing.T) {
	stats := map[int]int{}
	testEncRoundTrips(t, EncodingTRLE, func(pf *PixelFormat, rng *rand.Rand, pic *testPic, rs []framebuffer.Rect) []byte {
		// One encoder for all the rectangles: palettes are reused across
		// rectangles too.
		e := &testTileEnc{pf: pf, size: 16, trle: true, rng: rng, stats: stats}
		var out []byte
		for _, r := range rs {
			out = e.rect(out, pic, r)
		}
		return out
	})
	testTileStats(t, stats, true)
}

func TestTRLESizeMinded(t *testing.T) {
	pf := NativeFormat
	pic := testEncDesktop(&pf, 1021, 765)
	r := framebuffer.Rect{X: 0, Y: 0, W: 1021, H: 765}
	e := &testTileEnc{pf: &pf, size: 16, trle: true}
	base := testEncCanvas(t, 1021, 765)
	c := base.Clone()
	if err := testEncDecode(EncodingTRLE, pf, c, &framebuffer.Batch{}, e.rect(nil, pic, r), r); err != nil {
		t.Fatal(err)
	}
	testEncCompare(t, c, testEncWant(base, &pf, pic, r))
}

func TestTRLETruncated(t *testing.T) {
	for _, f := range testFormats {
		pf := f.pf
		rng := rand.New(rand.NewSource(1))
		pic := testEncPicture(rng, &pf, 100, 40)
		r := framebuffer.Rect{X: 1, Y: 2, W: 99, H: 38}
		e := &testTileEnc{pf: &pf, size: 16, trle: true, rng: rng}
		testEncTruncations(t, EncodingTRLE, pf, e.rect(nil, pic, r), r)
	}
}

func TestTRLEBad(t *testing.T) {
	tests := append([]testEncBad{}, testTileBadCases...)
	tests = append(tests,
		testEncBad{"packed reuse before any palette", []byte{127, 0}, "previous palette of 0 colours"},
		testEncBad{"RLE reuse before any palette", []byte{129, 0}, "palette RLE reuse before any palette"},
	)
	testEncBadCases(t, EncodingTRLE, framebuffer.Rect{X: 0, Y: 0, W: 4, H: 2}, tests)

	// Reuse in the second tile of a 20×2 rectangle, after a first 16×2
	// tile that sends a palette.
	pal20 := []byte{128 + 20}
	for i := 0; i < 20; i++ {
		pal20 = append(pal20, byte(i), 0, 0)
	}
	pal20 = append(pal20, 0x80, 31)
	pal2 := []byte{130, 1, 1, 1, 2, 2, 2, 0x80, 31}
	testEncBadCases(t, EncodingTRLE, framebuffer.Rect{X: 0, Y: 0, W: 20, H: 2}, []testEncBad{
		{"packed reuse of a large palette", append(pal20, 127, 0, 0), "previous palette of 20 colours"},
		{"reused palette index", append(pal2, 129, 2), "palette index 2 of 2"},
		{"reused palette packed index", []byte{131, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0x80, 31, 127, 0b00011011, 0}, "tile at 16,0: palette index 3 of 3"},
	})
}

// TestTRLEPaletteReuse checks subencodings 127 and 129 against a palette
// sent in an earlier tile, and in an earlier rectangle.
func TestTRLEPaletteReuse(t *testing.T) {
	payload := []byte{
		130, 10, 20, 30, 40, 50, 60, 0x80, 7, 0x81, 7, // 16×1 tile: palette RLE, 8 + 8
		127, 0b01010101, 0b10101010, // packed with the same palette
		129, 0x81, 15, // palette RLE with the same palette
	}
	r := framebuffer.Rect{X: 0, Y: 0, W: 48, H: 1}
	r2 := framebuffer.Rect{X: 0, Y: 1, W: 2, H: 1}
	payload = append(payload, 127, 0b10000000) // next rectangle, still the same palette
	c := testEncCanvas(t, 48, 2)
	if err := testEncDecode(EncodingTRLE, NativeFormat, c, &framebuffer.Batch{}, payload, r, r2); err != nil {
		t.Fatal(err)
	}
	a, b := uint32(0xff1e140a), uint32(0xff3c3228)
	want := map[[2]int]uint32{{0, 0}: a, {7, 0}: a, {8, 0}: b, {15, 0}: b,
		{16, 0}: a, {17, 0}: b, {23, 0}: b, {24, 0}: b, {25, 0}: a,
		{32, 0}: b, {47, 0}: b, {0, 1}: b, {1, 1}: a}
	for p, v := range want {
		if got := c.At(p[0], p[1]); got != v {
			t.Errorf("pixel %v = %#08x, want %#08x", p, got, v)
		}
	}
}

func FuzzTRLE(f *testing.F) {
	for _, s := range testFuzzSeeds(EncodingTRLE) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { testFuzzDecode(t, EncodingTRLE, data) })
}
