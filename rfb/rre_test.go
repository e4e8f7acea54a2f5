package rfb

import (
	"encoding/binary"
	"math/rand"
	"runtime"
	"testing"

	"kvmgate/framebuffer"
)

func TestRRERoundTrip(t *testing.T) {
	testEncRoundTrips(t, EncodingRRE, func(pf *PixelFormat, _ *rand.Rand, pic *testPic, rs []framebuffer.Rect) []byte {
		var out []byte
		for _, r := range rs {
			out = append(out, testEncRRE(pf, pic, r)...)
		}
		return out
	})
}

func TestRRETruncated(t *testing.T) {
	for _, f := range testFormats {
		pf := f.pf
		pic := testEncPicture(rand.New(rand.NewSource(1)), &pf, 100, 40)
		r := framebuffer.Rect{X: 1, Y: 2, W: 99, H: 38}
		testEncTruncations(t, EncodingRRE, pf, testEncRRE(&pf, pic, r), r)
	}
}

// testRRESubrect appends an RRE subrectangle in NativeFormat.
func testRRESubrect(dst []byte, x, y, w, h int) []byte {
	dst = append(dst, 1, 2, 3, 0)
	for _, n := range []int{x, y, w, h} {
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	}
	return dst
}

func TestRREBad(t *testing.T) {
	r := framebuffer.Rect{X: 2, Y: 3, W: 20, H: 10}
	head := func(n uint32) []byte { return append(binary.BigEndian.AppendUint32(nil, n), 9, 9, 9, 0) }
	tests := []testEncBad{
		{"subrect too wide", testRRESubrect(head(1), 10, 0, 11, 1), "outside"},
		{"subrect too tall", testRRESubrect(head(1), 0, 5, 1, 6), "outside"},
		{"subrect past the end", testRRESubrect(head(1), 0xffff, 0xffff, 0xffff, 0xffff), "outside"},
		{"second subrect bad", testRRESubrect(testRRESubrect(head(2), 0, 0, 20, 10), 20, 0, 1, 1), "subrectangle 1"},
		{"huge count", testRRESubrect(head(0xffffffff), 0, 0, 1, 1), "rre subrectangle"},
		{"no background", binary.BigEndian.AppendUint32(nil, 0), "rre background"},
	}
	testEncBadCases(t, EncodingRRE, r, tests)
}

func FuzzRRE(f *testing.F) {
	for _, s := range testFuzzSeeds(EncodingRRE) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { testFuzzDecode(t, EncodingRRE, data) })
}

// TestRREMemoryFollowsData announces four billion subrectangles but sends
// one: the decoder must not allocate for what never arrives.
func TestRREMemoryFollowsData(t *testing.T) {
	payload := testRRESubrect(append(binary.BigEndian.AppendUint32(nil, 0xffffffff), 1, 2, 3, 0), 0, 0, 1, 1)
	c := testEncCanvas(t, 8, 8)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := testEncDecode(EncodingRRE, NativeFormat, c, &framebuffer.Batch{}, payload, framebuffer.Rect{W: 8, H: 8})
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("decoded without error")
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("allocated %d bytes for one subrectangle", n)
	}
}
