package rfb

import (
	"math/rand"
	"testing"

	"kvmgate/framebuffer"
)

func TestHextileRoundTrip(t *testing.T) {
	stats := map[byte]int{}
	testEncRoundTrips(t, EncodingHextile, func(pf *PixelFormat, rng *rand.Rand, pic *testPic, rs []framebuffer.Rect) []byte {
		e := &testHextileEnc{pf: pf, rng: rng, stats: stats}
		var out []byte
		for _, r := range rs {
			out = append(out, e.rect(pic, r)...)
		}
		return out
	})
	// Every meaningful combination of subencoding flags was decoded.
	for _, flags := range []byte{
		hextileRaw, 0, hextileBackground,
		hextileAnySubrects, hextileBackground | hextileAnySubrects,
		hextileForeground | hextileAnySubrects, hextileBackground | hextileForeground | hextileAnySubrects,
		hextileAnySubrects | hextileSubrectsColoured, hextileBackground | hextileAnySubrects | hextileSubrectsColoured,
	} {
		if stats[flags] == 0 {
			t.Errorf("no tile with subencoding %#x was tested (%v)", flags, stats)
		}
	}
}

func TestHextileSizeMinded(t *testing.T) {
	// The encoder as a server would run it: smallest tiles, colours carried
	// over whenever they can be.
	pf := NativeFormat
	pic := testEncDesktop(&pf, 1021, 765)
	r := framebuffer.Rect{X: 0, Y: 0, W: 1021, H: 765}
	e := &testHextileEnc{pf: &pf, stats: map[byte]int{}}
	base := testEncCanvas(t, 1021, 765)
	c := base.Clone()
	if err := testEncDecode(EncodingHextile, pf, c, &framebuffer.Batch{}, e.rect(pic, r), r); err != nil {
		t.Fatal(err)
	}
	testEncCompare(t, c, testEncWant(base, &pf, pic, r))
}

func TestHextileTruncated(t *testing.T) {
	for _, f := range testFormats {
		pf := f.pf
		rng := rand.New(rand.NewSource(1))
		pic := testEncPicture(rng, &pf, 100, 40)
		r := framebuffer.Rect{X: 1, Y: 2, W: 99, H: 38}
		e := &testHextileEnc{pf: &pf, rng: rng, stats: map[byte]int{}}
		testEncTruncations(t, EncodingHextile, pf, e.rect(pic, r), r)
	}
}

func TestHextileBad(t *testing.T) {
	r := framebuffer.Rect{X: 1, Y: 1, W: 20, H: 10} // tiles 16×10 and 4×10
	bg := []byte{hextileBackground, 1, 2, 3, 0}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	fgSub := []byte{hextileForeground | hextileAnySubrects, 4, 5, 6, 0}
	first := []byte{hextileBackground | hextileForeground | hextileAnySubrects, 1, 2, 3, 0, 4, 5, 6, 0}
	tests := []testEncBad{
		{"no background", []byte{0}, "no background"},
		{"no foreground", cat(bg, []byte{hextileAnySubrects, 1, 0x00, 0x00}), "no foreground"},
		{"subrect too wide", cat(first, []byte{1, 0x10, 0xf0}), "outside the 16x10 tile"},
		{"subrect too tall", cat(first, []byte{1, 0x00, 0x0a}), "outside the 16x10 tile"},
		{"subrect outside small tile", cat(bg, fgSub, []byte{1, 0x30, 0x10}), "tile at 17,1"},
		{"coloured subrect outside", cat(bg, []byte{hextileAnySubrects | hextileSubrectsColoured, 2, 7, 7, 7, 0, 0x00, 0x00, 7, 7, 7, 0, 0x00, 0xff}), "subrectangle 1"},
		{"truncated subrects", cat(first, []byte{3, 0, 0}), "unexpected EOF"},
		{"truncated raw", []byte{hextileRaw, 1, 2, 3}, "unexpected EOF"},
	}
	testEncBadCases(t, EncodingHextile, r, tests)
}

// TestHextileCarryOver checks that colours carry over from tile to tile,
// including across a raw tile as deployed servers may rely on.
func TestHextileCarryOver(t *testing.T) {
	r := framebuffer.Rect{X: 0, Y: 0, W: 64, H: 1}
	raw := []byte{hextileRaw}
	for i := 0; i < 16; i++ {
		raw = append(raw, 50, 60, 70, 0)
	}
	payload := []byte{hextileBackground | hextileForeground | hextileAnySubrects, 10, 20, 30, 0, 40, 50, 60, 0, 1, 0x00, 0x00}
	payload = append(payload, raw...)
	payload = append(payload, hextileAnySubrects, 1, 0x10, 0x00) // bg and fg carried over
	payload = append(payload, 0)                                 // bg carried over
	c := testEncCanvas(t, 64, 1)
	if err := testEncDecode(EncodingHextile, NativeFormat, c, &framebuffer.Batch{}, payload, r); err != nil {
		t.Fatal(err)
	}
	bg, fg, rawC := uint32(0xff1e140a), uint32(0xff3c3228), uint32(0xff463c32)
	want := map[int]uint32{0: fg, 1: bg, 15: bg, 16: rawC, 31: rawC, 32: bg, 33: fg, 34: bg, 48: bg, 63: bg}
	for x, v := range want {
		if got := c.At(x, 0); got != v {
			t.Errorf("pixel %d = %#08x, want %#08x", x, got, v)
		}
	}
}

func FuzzHextile(f *testing.F) {
	for _, s := range testFuzzSeeds(EncodingHextile) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { testFuzzDecode(t, EncodingHextile, data) })
}
