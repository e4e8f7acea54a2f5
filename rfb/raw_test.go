package rfb

import (
	"math/rand"
	"testing"

	"kvmgate/framebuffer"
)

func TestRawRoundTrip(t *testing.T) {
	testEncRoundTrips(t, EncodingRaw, func(pf *PixelFormat, _ *rand.Rand, pic *testPic, rs []framebuffer.Rect) []byte {
		var out []byte
		for _, r := range rs {
			out = append(out, testEncRaw(pf, pic, r)...)
		}
		return out
	})
}

func TestRawTruncated(t *testing.T) {
	for _, f := range testFormats {
		pf := f.pf
		pic := testEncPicture(rand.New(rand.NewSource(1)), &pf, 300, 40)
		r := framebuffer.Rect{X: 1, Y: 2, W: 299, H: 38}
		testEncTruncations(t, EncodingRaw, pf, testEncRaw(&pf, pic, r), r)
	}
}

func FuzzRaw(f *testing.F) {
	for _, s := range testFuzzSeeds(EncodingRaw) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { testFuzzDecode(t, EncodingRaw, data) })
}
