package rfb

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"math/rand"
	"runtime"
	"testing"

	"kvmgate/framebuffer"
)

func TestZRLERoundTrip(t *testing.T) {
	stats := map[int]int{}
	testEncRoundTrips(t, EncodingZRLE, func(pf *PixelFormat, rng *rand.Rand, pic *testPic, rs []framebuffer.Rect) []byte {
		// One zlib stream for all the rectangles, as on a connection.
		e := newTestZRLEEnc(pf, rng)
		var out []byte
		for _, r := range rs {
			out = append(out, e.rect(pic, r)...)
		}
		for k, v := range e.tiles.stats {
			stats[k] += v
		}
		return out
	})
	testTileStats(t, stats, false)
}

// testTileStats checks that a ZRLE or TRLE test decoded tiles of every
// subencoding, including packed palettes of each index width.
func testTileStats(t *testing.T, stats map[int]int, trle bool) {
	t.Helper()
	kinds := []struct {
		name     string
		from, to int
	}{
		{"raw", 0, 0}, {"solid", 1, 1}, {"packed 1-bit", 2, 2}, {"packed 2-bit", 3, 4},
		{"packed 4-bit", 5, 16}, {"plain RLE", 128, 128}, {"palette RLE", 130, 143}, {"large palette RLE", 144, 255},
	}
	if trle {
		kinds = append(kinds, struct {
			name     string
			from, to int
		}{"packed reuse", 127, 127}, struct {
			name     string
			from, to int
		}{"palette RLE reuse", 129, 129})
	}
	for _, k := range kinds {
		n := 0
		for sub := k.from; sub <= k.to; sub++ {
			n += stats[sub]
		}
		if n == 0 {
			t.Errorf("no %s tile (subencoding %d..%d) was tested", k.name, k.from, k.to)
		}
	}
}

func TestZRLESizeMinded(t *testing.T) {
	for _, f := range testFormats {
		t.Run(f.name, func(t *testing.T) {
			pf := f.pf
			pic := testEncDesktop(&pf, 1021, 765)
			rs := []framebuffer.Rect{{X: 0, Y: 0, W: 1021, H: 765}, {X: 100, Y: 50, W: 300, H: 301}}
			e := newTestZRLEEnc(&pf, nil)
			payload := append(e.rect(pic, rs[0]), e.rect(pic, rs[1])...)
			base := testEncCanvas(t, 1021, 765)
			c := base.Clone()
			if err := testEncDecode(EncodingZRLE, pf, c, &framebuffer.Batch{}, payload, rs...); err != nil {
				t.Fatal(err)
			}
			testEncCompare(t, c, testEncWant(base, &pf, pic, rs...))
		})
	}
}

// TestZRLEStreamAcrossEncodings checks that the zlib stream survives
// rectangles of other encodings between ZRLE ones.
func TestZRLEStreamAcrossEncodings(t *testing.T) {
	pf := NativeFormat
	rng := rand.New(rand.NewSource(3))
	pic := testEncPicture(rng, &pf, 200, 100)
	base := testEncCanvas(t, 200, 100)
	c := base.Clone()
	rs := []framebuffer.Rect{{X: 0, Y: 0, W: 100, H: 100}, {X: 100, Y: 0, W: 50, H: 100}, {X: 150, Y: 0, W: 50, H: 100}}
	e := newTestZRLEEnc(&pf, rng)
	var payload []byte
	payload = append(payload, e.rect(pic, rs[0])...)
	payload = append(payload, testEncRaw(&pf, pic, rs[1])...)
	payload = append(payload, e.rect(pic, rs[2])...)
	d := newDecodeContext(newReader(bytes.NewReader(payload)), pf, nil, c, &framebuffer.Batch{})
	for i, enc := range []Encoding{EncodingZRLE, EncodingRaw, EncodingZRLE} {
		dec, err := d.decoder(enc)
		if err != nil {
			t.Fatal(err)
		}
		if err := dec.decode(d, rs[i]); err != nil {
			t.Fatalf("rectangle %d: %v", i, err)
		}
	}
	testEncCompare(t, c, testEncWant(base, &pf, pic, rs...))
}

func TestZRLETruncated(t *testing.T) {
	for _, f := range testFormats {
		pf := f.pf
		rng := rand.New(rand.NewSource(1))
		pic := testEncPicture(rng, &pf, 150, 70)
		r := framebuffer.Rect{X: 1, Y: 2, W: 149, H: 68}
		testEncTruncations(t, EncodingZRLE, pf, newTestZRLEEnc(&pf, rng).rect(pic, r), r)
	}
}

// testZRLEPayload compresses tile data into one ZRLE payload.
func testZRLEPayload(tiles []byte) []byte {
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	zw.Write(tiles)
	zw.Flush()
	return append(binary.BigEndian.AppendUint32(nil, uint32(buf.Len())), buf.Bytes()...)
}

// testTileBadCases are malformed tiles for a 4×2 rectangle in NativeFormat
// (3-byte CPIXELs), shared by ZRLE and TRLE.
var testTileBadCases = []testEncBad{
	{"unused subencoding", []byte{17}, "unused subencoding 17"},
	{"packed index", []byte{3, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0b00011011, 0}, "palette index 3 of 3"},
	{"packed 4-bit index", []byte{5, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 0x01, 0x23, 0x4f, 0, 0, 0}, "palette index 15 of 5"},
	{"palette RLE index", []byte{130, 1, 1, 1, 2, 2, 2, 5}, "palette index 5 of 2"},
	{"palette RLE run index", []byte{130, 1, 1, 1, 2, 2, 2, 0x80 | 2, 3}, "palette index 2 of 2"},
	{"plain RLE run too long", []byte{128, 1, 2, 3, 8}, "run length 9 beyond the tile's 8"},
	{"plain RLE second run too long", []byte{128, 1, 2, 3, 4, 1, 2, 3, 3}, "run length 4 beyond the tile's 3"},
	{"plain RLE endless run", []byte{128, 1, 2, 3, 255, 255, 255, 255, 255, 255}, "beyond the tile"},
	{"palette RLE run too long", []byte{130, 1, 1, 1, 2, 2, 2, 0x81, 255, 255, 0}, "beyond the tile"},
	{"truncated raw", []byte{0, 1, 2, 3}, "unexpected EOF"},
	{"truncated palette", []byte{16, 1, 2, 3}, "unexpected EOF"},
}

func TestZRLEBad(t *testing.T) {
	r := framebuffer.Rect{X: 0, Y: 0, W: 4, H: 2}
	var tests []testEncBad
	for _, tc := range testTileBadCases {
		want := tc.want
		if want == "unexpected EOF" {
			want = "truncated zlib data"
		}
		tests = append(tests, testEncBad{tc.name, testZRLEPayload(tc.payload), want})
	}
	tests = append(tests,
		testEncBad{"palette reuse is TRLE only", testZRLEPayload([]byte{127}), "unused subencoding 127"},
		testEncBad{"subencoding 129", testZRLEPayload([]byte{129}), "unused subencoding 129"},
		testEncBad{"left over", testZRLEPayload([]byte{1, 1, 2, 3, 1, 1, 2, 3}), "4 bytes of tile data left over"},
		testEncBad{"bad zlib header", []byte{0, 0, 0, 3, 0x78, 0x9d, 0}, "bad zlib header"},
		testEncBad{"zlib dictionary", []byte{0, 0, 0, 3, 0x78, 0xbb, 0}, "dictionary"},
		testEncBad{"corrupt deflate", []byte{0, 0, 0, 4, 0x78, 0x9c, 0xff, 0xff}, "zrle tile at 0,0"},
		testEncBad{"no data", []byte{0, 0, 0, 0}, "truncated zlib header"},
		testEncBad{"length beyond limit", []byte{0x7f, 0xff, 0xff, 0xff}, "exceed the limit"},
		testEncBad{"short data", []byte{0, 0, 1, 0, 0x78}, "zrle data"},
	)
	testEncBadCases(t, EncodingZRLE, r, tests)
}

// TestZRLEBoundedInflate sends a tiny rectangle whose zlib data inflates to
// many megabytes: the decoder must stop after what the rectangle can use.
func TestZRLEBoundedInflate(t *testing.T) {
	tiles := append([]byte{1, 1, 2, 3}, make([]byte, 64<<20)...)
	payload := testZRLEPayload(tiles)
	c := testEncCanvas(t, 8, 8)
	d := newDecodeContext(newReader(bytes.NewReader(payload)), NativeFormat, nil, c, &framebuffer.Batch{})
	dec, _ := d.decoder(EncodingZRLE)
	err := dec.decode(d, framebuffer.Rect{X: 1, Y: 1, W: 1, H: 1})
	if err == nil {
		t.Fatal("decoded without error")
	}
	z := dec.(*zrleDecoder)
	if used, all := z.in.pos, len(z.in.buf); used > all/8 {
		t.Fatalf("inflated %d of %d compressed bytes for a 1×1 rectangle", used, all)
	}
	if c.At(1, 1) != 0xff030201 {
		t.Fatalf("pixel = %#08x", c.At(1, 1))
	}
}

func FuzzZRLE(f *testing.F) {
	for _, s := range testFuzzSeeds(EncodingZRLE) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { testFuzzDecode(t, EncodingZRLE, data) })
}

// TestZRLEMemoryFollowsData announces the largest payload allowed but sends
// little of it: the decoder must not allocate for what never arrives.
func TestZRLEMemoryFollowsData(t *testing.T) {
	payload := append([]byte{0x03, 0xff, 0xff, 0xff}, make([]byte, 1000)...)
	c := testEncCanvas(t, 8, 8)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := testEncDecode(EncodingZRLE, NativeFormat, c, &framebuffer.Batch{}, payload, framebuffer.Rect{W: 8, H: 8})
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("decoded without error")
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 2<<20 {
		t.Fatalf("allocated %d bytes for 1000 bytes of data", n)
	}
}
