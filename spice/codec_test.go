package spice

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/draw"
	"image/png"
	"os"
	"testing"

	"kvmgate/framebuffer"
)

// The testdata images are the SeaBIOS "No bootable device" screen (720×400)
// as QEMU's SPICE server compressed it with LZ, QUIC and LZ4. seabios.png is
// that screen as DecodeLZ decoded it when TestSpicyScreenshot had shown the
// LZ path equal to spice-gtk's spicy-screenshot of it; QUIC is checked
// against it independently.

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func referenceScreen(t testing.TB) *framebuffer.Canvas {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(readTestdata(t, "seabios.png")))
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	c, err := framebuffer.NewCanvas(b.Dx(), b.Dy())
	if err != nil {
		t.Fatal(err)
	}
	draw.Draw(&image.RGBA{Pix: c.Pix, Stride: c.Stride, Rect: image.Rect(0, 0, c.W, c.H)}, image.Rect(0, 0, c.W, c.H), img, b.Min, draw.Src)
	return c
}

// cursorCell is the text cell where SeaBIOS's cursor blinks.
var cursorCell = framebuffer.Rect{X: 0, Y: 128, W: 9, H: 16}

func TestDecodeCapturedImages(t *testing.T) {
	ref := referenceScreen(t)
	for _, tc := range []struct {
		file   string
		decode func([]byte) (*framebuffer.Canvas, error)
	}{
		{"seabios-lz.bin", func(b []byte) (*framebuffer.Canvas, error) { return DecodeLZ(b, nil) }},
		{"seabios-quic.bin", DecodeQUIC},
		{"seabios-lz4.bin", func(b []byte) (*framebuffer.Canvas, error) { return DecodeLZ4(b, 720, 400) }},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := tc.decode(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if got.W != ref.W || got.H != ref.H {
				t.Fatalf("decoded %dx%d, reference %dx%d", got.W, got.H, ref.W, ref.H)
			}
			// The captures were taken at different moments of the
			// blinking text cursor, in the first cell of row 8.
			if d := diff(got, ref); !d.Empty() && !d.In(cursorCell) {
				t.Fatalf("decoded image differs from the reference in %v, outside the cursor cell %v", d, cursorCell)
			}
		})
	}
}

func TestDecodeTruncated(t *testing.T) {
	for _, tc := range []struct {
		file   string
		decode func([]byte) (*framebuffer.Canvas, error)
	}{
		{"seabios-lz.bin", func(b []byte) (*framebuffer.Canvas, error) { return DecodeLZ(b, nil) }},
		{"seabios-quic.bin", DecodeQUIC},
		{"seabios-lz4.bin", func(b []byte) (*framebuffer.Canvas, error) { return DecodeLZ4(b, 720, 400) }},
	} {
		data := readTestdata(t, tc.file)
		for _, n := range []int{0, 10, 28, len(data) / 2, len(data) - 12} {
			if _, err := tc.decode(data[:n]); err == nil {
				t.Errorf("%s cut to %d bytes: no error", tc.file, n)
			}
		}
	}
}

// lzStream builds an LZ stream header for hand-made test streams.
func lzStream(typ, w, h, stride uint32, topDown bool, body ...byte) []byte {
	var b []byte
	td := uint32(0)
	if topDown {
		td = 1
	}
	for _, v := range []uint32{lzMagic, lzVersion, typ, w, h, stride, td} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return append(b, body...)
}

func TestDecodeLZHandMade(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		pal  []uint32
		want []uint32 // RGBA pixels, top row first
	}{
		{
			// Two literal pixels (b,g,r), then a match of length 2 at
			// distance 1 (a run): ctrl = (2-1+1)<<5, distance byte 0.
			name: "rgb32 literal and run",
			data: lzStream(lzRGB32, 4, 1, 16, true, 1, 0x30, 0x20, 0x10, 0x03, 0x02, 0x01, 2<<5, 0),
			want: []uint32{0xff302010, 0xff030201, 0xff030201, 0xff030201},
		},
		{
			name: "rgb32 bottom-up",
			data: lzStream(lzRGB32, 1, 2, 4, false, 1, 0, 0, 0xff, 0xff, 0, 0),
			want: []uint32{0xffff0000, 0xff0000ff},
		},
		{
			name: "plt8",
			data: lzStream(lzPLT8, 3, 1, 3, true, 2, 0, 1, 0),
			pal:  []uint32{0x00ff0000, 0x0000ff00},
			want: []uint32{0xff0000ff, 0xff00ff00, 0xff0000ff},
		},
		{
			name: "plt1 be",
			data: lzStream(lzPLT1BE, 8, 1, 1, true, 0, 0xa5),
			pal:  []uint32{0x000000, 0xffffff},
			want: []uint32{0xffffffff, 0xff000000, 0xffffffff, 0xff000000, 0xff000000, 0xffffffff, 0xff000000, 0xffffffff},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeLZ(tc.data, tc.pal)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint32
			for y := 0; y < c.H; y++ {
				for x := 0; x < c.W; x++ {
					got = append(got, c.At(x, y))
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d pixels, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("pixel %d = %#08x, want %#08x", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func BenchmarkDecodeLZ(b *testing.B) {
	data := readTestdata(b, "seabios-lz.bin")
	b.SetBytes(720 * 400 * 4)
	for b.Loop() {
		if _, err := DecodeLZ(data, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(720*400*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpixel/s")
}

func BenchmarkDecodeQUIC(b *testing.B) {
	data := readTestdata(b, "seabios-quic.bin")
	b.SetBytes(720 * 400 * 4)
	for b.Loop() {
		if _, err := DecodeQUIC(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(720*400*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpixel/s")
}

func BenchmarkDecodeLZ4(b *testing.B) {
	data := readTestdata(b, "seabios-lz4.bin")
	b.SetBytes(720 * 400 * 4)
	for b.Loop() {
		if _, err := DecodeLZ4(data, 720, 400); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(720*400*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpixel/s")
}

// linux-qxl-jpeg.bin is a 384×32 JPEG image QEMU's SPICE server sent for
// the Linux guest's qxl console with jpeg-wan-compression=always.
func TestDecodeCapturedJPEG(t *testing.T) {
	c, err := DecodeJPEG(readTestdata(t, "linux-qxl-jpeg.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if c.W != 384 || c.H != 32 || blank(c) {
		t.Fatalf("decoded %dx%d (blank %v), want 384x32 with text", c.W, c.H, blank(c))
	}
}

func BenchmarkDecodeJPEG(b *testing.B) {
	data := readTestdata(b, "linux-qxl-jpeg.bin")
	b.SetBytes(384 * 32 * 4)
	for b.Loop() {
		if _, err := DecodeJPEG(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(384*32*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpixel/s")
}
