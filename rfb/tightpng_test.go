package rfb

import "testing"

func FuzzTightPNG(f *testing.F) {
	for _, s := range tightFuzzSeeds(f, true) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) { tightFuzzDecode(t, EncodingTightPNG, data) })
}
