package rfb

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"kvmgate/framebuffer"
)

func cursorTestContext(pf PixelFormat, payload []byte) *decodeContext {
	cv, _ := framebuffer.NewCanvas(1, 1)
	return newDecodeContext(newReader(bytes.NewReader(payload)), pf, nil, cv, &framebuffer.Batch{})
}

// cursorTestMask builds a bitmask of rows padded to bytes from a predicate.
func cursorTestMask(w, h int, on func(x, y int) bool) []byte {
	row := (w + 7) / 8
	m := make([]byte, row*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if on(x, y) {
				m[y*row+x/8] |= 0x80 >> (x % 8)
			}
		}
	}
	return m
}

func TestCursor(t *testing.T) {
	for _, f := range tightFormats {
		if f.pf.BitsPerPixel == 8 {
			continue
		}
		for _, w := range []int{1, 8, 9, 17} {
			h := 5
			pic := tightNoisePic(w, h, int64(w))
			visible := func(x, y int) bool { return (x+2*y)%3 != 0 }
			var payload []byte
			for _, c := range pic.pix {
				payload = append(payload, tightPack(f.pf, tightQuant(f.pf, c))...)
			}
			payload = append(payload, cursorTestMask(w, h, visible)...)
			d := cursorTestContext(f.pf, payload)
			c, err := readCursor(d, framebuffer.Rect{X: 2, Y: 3, W: w, H: h})
			if err != nil {
				t.Fatalf("%s %dx%d: %v", f.name, w, h, err)
			}
			if d.r.n != int64(len(payload)) {
				t.Fatalf("%s: read %d of %d bytes", f.name, d.r.n, len(payload))
			}
			if c.W != w || c.H != h || c.HotX != min(2, w-1) || c.HotY != 3 {
				t.Fatalf("%s: cursor %dx%d hot %d,%d", f.name, c.W, c.H, c.HotX, c.HotY)
			}
			conv := newConverter(f.pf, nil)
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					got := binary.LittleEndian.Uint32(c.Pix[4*(y*w+x):])
					want := uint32(0)
					if visible(x, y) {
						want = conv.rgba(tightQuant(f.pf, pic.pix[y*w+x]))
					}
					if got != want {
						t.Fatalf("%s %dx%d pixel %d,%d = %#08x, want %#08x", f.name, w, h, x, y, got, want)
					}
				}
			}
		}
	}
}

func TestXCursor(t *testing.T) {
	w, h := 11, 4
	primary := func(x, y int) bool { return x%2 == 0 }
	valid := func(x, y int) bool { return y != 1 }
	payload := []byte{0xff, 0x80, 0x01, 0x10, 0x20, 0x30}
	payload = append(payload, cursorTestMask(w, h, primary)...)
	payload = append(payload, cursorTestMask(w, h, valid)...)
	d := cursorTestContext(Format16, payload)
	c, err := readXCursor(d, framebuffer.Rect{X: 5, Y: 0, W: w, H: h})
	if err != nil {
		t.Fatal(err)
	}
	if d.r.n != int64(len(payload)) {
		t.Fatalf("read %d of %d bytes", d.r.n, len(payload))
	}
	if c.HotX != 5 || c.HotY != 0 {
		t.Errorf("hotspot %d,%d", c.HotX, c.HotY)
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			got := binary.LittleEndian.Uint32(c.Pix[4*(y*w+x):])
			var want uint32
			switch {
			case !valid(x, y):
			case primary(x, y):
				want = 0xff0180ff
			default:
				want = 0xff302010
			}
			if got != want {
				t.Fatalf("pixel %d,%d = %#08x, want %#08x", x, y, got, want)
			}
		}
	}
}

func TestAlphaCursor(t *testing.T) {
	// Premultiplied R, G, B, A pixels and their straight-alpha values.
	px := [][2][4]byte{
		{{10, 20, 30, 255}, {10, 20, 30, 255}},
		{{0, 0, 0, 0}, {0, 0, 0, 0}},
		{{9, 9, 9, 0}, {0, 0, 0, 0}}, // invalid: colour without alpha
		{{64, 32, 0, 128}, {128, 64, 0, 128}},
		{{1, 0, 1, 2}, {128, 0, 128, 2}},
		{{200, 200, 200, 100}, {255, 255, 255, 100}}, // invalid: saturates
	}
	payload := binary.BigEndian.AppendUint32(nil, uint32(EncodingRaw))
	var want []byte
	for _, p := range px {
		payload = append(payload, p[0][:]...)
		want = append(want, p[1][:]...)
	}
	d := cursorTestContext(Format16, payload) // the connection's format does not matter
	c, err := readAlphaCursor(d, framebuffer.Rect{X: 1, Y: 1, W: 3, H: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.Pix, want) {
		t.Errorf("pixels\n% x\nwant\n% x", c.Pix, want)
	}
	if d.r.n != int64(len(payload)) {
		t.Fatalf("read %d of %d bytes", d.r.n, len(payload))
	}
}

func TestCursorHidden(t *testing.T) {
	raw := binary.BigEndian.AppendUint32(nil, uint32(EncodingRaw))
	tests := []struct {
		name    string
		read    func(*decodeContext, framebuffer.Rect) (*framebuffer.Cursor, error)
		r       framebuffer.Rect
		payload []byte
	}{
		{"cursor 0x0", readCursor, framebuffer.Rect{}, nil},
		{"cursor 0x5", readCursor, framebuffer.Rect{H: 5}, nil},
		{"cursor 5x0", readCursor, framebuffer.Rect{W: 5}, nil},
		{"xcursor 0x0", readXCursor, framebuffer.Rect{X: 3, Y: 3}, nil},
		{"alpha 0x0", readAlphaCursor, framebuffer.Rect{}, raw},
	}
	for _, tc := range tests {
		d := cursorTestContext(NativeFormat, tc.payload)
		c, err := tc.read(d, tc.r)
		if c != nil || err != nil {
			t.Errorf("%s: got %v, %v; want nil, nil", tc.name, c, err)
		}
		if d.r.n != int64(len(tc.payload)) {
			t.Errorf("%s: read %d of %d bytes", tc.name, d.r.n, len(tc.payload))
		}
	}
}

func TestCursorErrors(t *testing.T) {
	tests := []struct {
		name    string
		read    func(*decodeContext, framebuffer.Rect) (*framebuffer.Cursor, error)
		r       framebuffer.Rect
		payload []byte
		want    string
	}{
		{"cursor too wide", readCursor, framebuffer.Rect{W: 513, H: 1}, nil, "exceeds"},
		{"xcursor too tall", readXCursor, framebuffer.Rect{W: 1, H: 65535}, nil, "exceeds"},
		{"alpha too big", readAlphaCursor, framebuffer.Rect{W: 600, H: 600}, nil, "exceeds"},
		{"cursor truncated", readCursor, framebuffer.Rect{W: 2, H: 2}, make([]byte, 16), "EOF"},
		{"xcursor truncated", readXCursor, framebuffer.Rect{W: 2, H: 2}, make([]byte, 9), "EOF"},
		{"alpha truncated", readAlphaCursor, framebuffer.Rect{W: 2, H: 2}, make([]byte, 19), "EOF"},
		{"alpha zrle", readAlphaCursor, framebuffer.Rect{W: 2, H: 2}, []byte{0, 0, 0, 16}, "unsupported encoding zrle"},
	}
	for _, tc := range tests {
		c, err := tc.read(cursorTestContext(NativeFormat, tc.payload), tc.r)
		if err == nil || c != nil {
			t.Errorf("%s: got %v, %v; want an error", tc.name, c, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "rfb: ") {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.want)
		}
	}
}

// FuzzCursor reads cursor pseudo-rectangles: byte 0 picks the kind and the
// pixel format, bytes 1..4 the hotspot and size (up to 600, beyond the
// limit), the rest is the payload.
func FuzzCursor(f *testing.F) {
	raw := binary.BigEndian.AppendUint32(nil, uint32(EncodingRaw))
	// Size bytes 4 and 1 mean 9×2 pixels.
	f.Add(append([]byte{0, 1, 1, 4, 1}, make([]byte, 9*2*4+2*2)...))
	f.Add(append([]byte{3 * 1, 0, 0, 4, 1}, make([]byte, 6+2*2*2)...))
	f.Add(append(append([]byte{3 * 2, 5, 5, 4, 1}, raw...), bytes.Repeat([]byte{0x40, 0x20, 0x10, 0x80}, 18)...))
	f.Add([]byte{3 * 2, 0, 0, 0, 0, 0, 0, 0, 0})
	readers := []func(*decodeContext, framebuffer.Rect) (*framebuffer.Cursor, error){readCursor, readXCursor, readAlphaCursor}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 5 {
			return
		}
		read := readers[int(data[0])%3]
		pf := tightFuzzFormats[int(data[0]/3)%len(tightFuzzFormats)]
		r := framebuffer.Rect{X: int(data[1]), Y: int(data[2]), W: int(data[3]) * 600 / 255, H: int(data[4]) * 600 / 255}
		d := newDecodeContext(newReader(bytes.NewReader(data[5:])), pf, nil, &framebuffer.Canvas{}, &framebuffer.Batch{})
		c, err := read(d, r)
		if err != nil {
			if c != nil {
				t.Fatal("cursor with an error")
			}
			return
		}
		if c == nil {
			if !r.Empty() {
				t.Fatalf("no cursor for %v", r)
			}
			return
		}
		if c.W != r.W || c.H != r.H || len(c.Pix) != 4*r.W*r.H || c.HotX < 0 || c.HotX >= c.W || c.HotY < 0 || c.HotY >= c.H {
			t.Fatalf("cursor %dx%d hot %d,%d with %d bytes for %v", c.W, c.H, c.HotX, c.HotY, len(c.Pix), r)
		}
	})
}
