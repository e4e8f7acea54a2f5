package spice

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"strings"
	"testing"
)

// jpegOf encodes a w×h image of one colour at the highest quality.
func jpegOf(t testing.TB, w, h int, c color.RGBA) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, 0xff
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// alphaLZ builds an LZ XXXA stream of literal runs holding alpha, in
// stream order.
func alphaLZ(w, h int, topDown bool, alpha []byte) []byte {
	var body []byte
	for len(alpha) > 0 {
		n := min(len(alpha), lzMaxCopy)
		body = append(body, byte(n-1))
		body = append(body, alpha[:n]...)
		alpha = alpha[n:]
	}
	return lzStream(lzXXXA, uint32(w), uint32(h), uint32(4*w), topDown, body...)
}

func TestDecodeJPEGAlpha(t *testing.T) {
	const w, h = 16, 8
	jp := jpegOf(t, w, h, color.RGBA{R: 200, G: 100, B: 50})
	// Alpha is the row number times 10, in stream order.
	alpha := make([]byte, w*h)
	for i := range alpha {
		alpha[i] = byte(i / w * 10)
	}
	for _, topDown := range []bool{true, false} {
		flags := uint8(0)
		if topDown {
			flags = jpegAlphaTopDown
		}
		data := append(append([]byte(nil), jp...), alphaLZ(w, h, topDown, alpha)...)
		c, err := DecodeJPEGAlpha(data, uint32(len(jp)), flags)
		if err != nil {
			t.Fatalf("top-down %v: %v", topDown, err)
		}
		if c.W != w || c.H != h {
			t.Fatalf("decoded %dx%d", c.W, c.H)
		}
		for y := 0; y < h; y++ {
			sy := y
			if !topDown {
				sy = h - 1 - y
			}
			for x := 0; x < w; x++ {
				p := c.Pix[c.Offset(x, y):]
				if p[3] != byte(sy*10) {
					t.Fatalf("top-down %v: alpha at %d,%d = %d, want %d", topDown, x, y, p[3], sy*10)
				}
				if d := absDiff(p[0], 200) + absDiff(p[1], 100) + absDiff(p[2], 50); d > 6 {
					t.Fatalf("colour at %d,%d = %v, want about 200,100,50", x, y, p[:3])
				}
			}
		}
	}
	// Errors: the alpha stream's orientation disagrees with the flags, it
	// is not XXXA, or the sizes differ.
	for _, tc := range []struct {
		name  string
		data  []byte
		flags uint8
		want  string
	}{
		{"orientation", append(append([]byte(nil), jp...), alphaLZ(w, h, true, alpha)...), 0, "top-down"},
		{"lz type", append(append([]byte(nil), jp...), lzStream(lzRGB32, w, h, 4*w, true)...), 1, "want XXXA"},
		{"size", append(append([]byte(nil), jp...), alphaLZ(w, h/2, true, alpha[:w*h/2])...), 1, "alpha 16x4"},
		{"jpeg size", jp, 0, "alpha stream of 0 bytes"},
	} {
		if _, err := DecodeJPEGAlpha(tc.data, uint32(len(jp)), tc.flags); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := DecodeJPEGAlpha(jp, uint32(len(jp)+1), 0); err == nil {
		t.Error("JPEG size past the data: no error")
	}
}

func TestDecodeJPEGSizeClaim(t *testing.T) {
	// A JPEG header claiming 8192×8192 in a few hundred bytes.
	jp := jpegOf(t, 8, 8, color.RGBA{R: 9})
	i := bytes.Index(jp, []byte{0xff, 0xc0}) // SOF0: length, precision, height, width
	if i < 0 {
		t.Fatal("no SOF0 marker")
	}
	jp[i+5], jp[i+6], jp[i+7], jp[i+8] = 0x20, 0, 0x20, 0
	if _, err := DecodeJPEG(jp); err == nil || !strings.Contains(err.Error(), "8192x8192") {
		t.Fatalf("got %v, want an error about the 8192x8192 claim", err)
	}
	// A real flat 1024×768 image passes the bound.
	if _, err := DecodeJPEG(jpegOf(t, 1024, 768, color.RGBA{R: 9})); err != nil {
		t.Fatalf("flat 1024x768: %v", err)
	}
}

func absDiff(a, b byte) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

func FuzzDecodeJPEGAlpha(f *testing.F) {
	alpha := make([]byte, 16)
	jp := jpegOf(f, 4, 4, color.RGBA{R: 1, G: 2, B: 3})
	f.Add(append(append([]byte(nil), jp...), alphaLZ(4, 4, true, alpha)...), uint32(len(jp)), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, jpegSize uint32, flags uint8) {
		if c, err := DecodeJPEGAlpha(b, jpegSize, flags); err == nil && len(c.Pix) != c.W*c.H*4 {
			t.Fatal("bad canvas")
		}
	})
}
