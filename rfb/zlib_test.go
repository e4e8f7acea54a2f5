package rfb

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"strings"
	"testing"

	"kvmgate/framebuffer"
)

// zlibEncRects encodes pictures as Zlib rectangles on one stream, the way a
// server does: the raw pixels of each, deflated and sync-flushed.
func zlibEncRects(pf PixelFormat, pics []tightPic) []byte {
	var out, zb bytes.Buffer
	zw := zlib.NewWriter(&zb)
	for _, p := range pics {
		for _, c := range p.pix {
			zw.Write(tightPack(pf, tightQuant(pf, c)))
		}
		zw.Flush()
		binary.Write(&out, binary.BigEndian, uint32(zb.Len()))
		out.Write(zb.Bytes())
		zb.Reset()
	}
	return out.Bytes()
}

func TestZlib(t *testing.T) {
	pics := []tightPic{
		tightNoisePic(17, 9, 1),
		tightSmoothPic(300, 20),
		tightNoisePic(1, 1, 2),
		tightPalettePic(64, 30, 3, 3),
		tightNoisePic(17, 9, 1), // repeat: back-references into the shared window
	}
	for _, f := range tightFormats {
		if f.pf.BitsPerPixel == 8 {
			continue // tightQuant would need a colour map
		}
		t.Run(f.name, func(t *testing.T) {
			payload := zlibEncRects(f.pf, pics)
			var rects []framebuffer.Rect
			y := 0
			for _, p := range pics {
				rects = append(rects, framebuffer.Rect{X: 1, Y: y, W: p.w, H: p.h})
				y += p.h
			}
			cv, err := tightDecodeAll(t, EncodingZlib, f.pf, payload, 302, y, rects)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range rects {
				// Zlib carries full pixels, so compare with what a full
				// pixel converts to.
				want := pics[i]
				for y := 0; y < r.H; y++ {
					for x := 0; x < r.W; x++ {
						w := newConverter(f.pf, nil).rgba(tightQuant(f.pf, want.pix[y*want.w+x]))
						if got := cv.At(r.X+x, r.Y+y); got != w {
							t.Fatalf("rect %d pixel %d,%d = %#08x, want %#08x", i, x, y, got, w)
						}
					}
				}
			}
		})
	}
}

func TestZlibErrors(t *testing.T) {
	pf := NativeFormat
	good := zlibEncRects(pf, []tightPic{tightNoisePic(4, 4, 1)})
	tests := []struct {
		name    string
		payload []byte
		want    string
	}{
		{"empty", nil, "EOF"},
		{"too long", []byte{0xff, 0xff, 0xff, 0xff}, "exceeds limit"},
		{"truncated chunk", good[:len(good)-3], "EOF"},
		{"short data", append([]byte{0, 0, 0, 4}, good[4:8]...), "ended before"},
		{"garbage", append([]byte{0, 0, 0, 8}, bytes.Repeat([]byte{0xee}, 8)...), "zlib"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tightDecodeAll(t, EncodingZlib, pf, tc.payload, 4, 4, []framebuffer.Rect{{W: 4, H: 4}})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "rfb: zlib rect") {
				t.Errorf("error %q, want rfb: zlib rect ... %q", err, tc.want)
			}
		})
	}
}

func FuzzZlib(f *testing.F) {
	for pfi, pf := range tightFuzzFormats[:5] {
		seed := []byte{byte(pfi), 9 - 1, 5 - 1}
		f.Add(append(seed, zlibEncRects(pf, []tightPic{tightNoisePic(9, 5, 1), tightSmoothPic(9, 5)})...))
	}
	f.Fuzz(func(t *testing.T, data []byte) { tightFuzzDecode(t, EncodingZlib, data) })
}
