package tiles_test

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"testing"

	"kvmgate/encoders/tiles"
	"kvmgate/encoders/tiles/tilestest"
	"kvmgate/framebuffer"
)

// FuzzEncodeRoundTrip encodes arbitrary pixels losslessly and checks that
// the reference decoder reproduces them exactly.
func FuzzEncodeRoundTrip(f *testing.F) {
	f.Add(uint8(7), uint8(5), []byte{1, 2, 3, 4, 5, 6})
	f.Add(uint8(130), uint8(70), []byte{0})
	f.Fuzz(func(t *testing.T, w8, h8 uint8, seed []byte) {
		w, h := int(w8)%200+1, int(h8)%150+1
		if len(seed) == 0 {
			seed = []byte{0}
		}
		c, _ := framebuffer.NewCanvas(w, h)
		for i := 0; i < len(c.Pix); i += 4 {
			s := seed[(i/4)%len(seed)]
			c.Pix[i], c.Pix[i+1], c.Pix[i+2] = s, s^byte(i/4/len(seed)), s>>1
		}
		e := tiles.NewEncoder()
		msg, err := e.Encode(tiles.AppendResize(nil, w, h), c, c.Bounds(), tiles.Quality{})
		if err != nil {
			t.Fatal(err)
		}
		d := tilestest.NewDecoder()
		if _, err := d.Apply(msg); err != nil {
			t.Fatal(err)
		}
		if !d.Canvas.Equal(c) {
			t.Fatal("round trip differs")
		}
	})
}

// FuzzDecoder checks that the reference decoder refuses bad records without
// panicking.
func FuzzDecoder(f *testing.F) {
	f.Add(tiles.AppendFill(tiles.AppendResize(nil, 8, 8), framebuffer.Rect{W: 4, H: 4}, 1, 2, 3))
	f.Add(tiles.AppendCursor(nil, &framebuffer.Cursor{W: 1, H: 1, Pix: []byte{1, 2, 3, 4}}))
	// A batch of a copy, fills and packed, indexed and RGB pixels.
	c, _ := framebuffer.NewCanvas(40, 20)
	for i := 0; i < len(c.Pix); i += 4 {
		switch k := i / 4; {
		case k%40 < 10:
			c.Pix[i] = 9
		case k%40 < 20:
			c.Pix[i] = byte(k % 3)
		case k%40 < 30:
			c.Pix[i+1] = byte(k % 40)
		default:
			c.Pix[i], c.Pix[i+2] = byte(k), byte(k*7)
		}
	}
	e := tiles.NewEncoder()
	e.ForgetLossy()
	e.Copy(framebuffer.Move{Src: framebuffer.Rect{Y: 2, W: 40, H: 18}})
	msg, err := e.Encode(tiles.AppendResize(nil, 40, 20), c, c.Bounds(), tiles.Quality{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tiles.AppendFrameEnd(msg, 300))
	// A bare deflate record in format 3 (4 colours, 3×5 pixels, columns of
	// 10 bits padded to 2 bytes), then a short frame end.
	var z bytes.Buffer
	zw, _ := flate.NewWriter(&z, flate.BestSpeed)
	zw.Write([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}) // the palette
	zw.Write([]byte{0x1b, 0x40, 0xe4, 0x00, 0x55, 0xc0})    // the indices
	zw.Flush()
	bare := append(tiles.AppendResize(nil, 8, 8), tiles.RecordDeflate, 1, 0, 1, 0, 3, 0, 5, 0, tiles.FormatColumns, 3)
	bare = binary.LittleEndian.AppendUint32(bare, uint32(z.Len()))
	f.Add(tiles.AppendFrameEnd(append(bare, z.Bytes()...), 1))
	f.Fuzz(func(t *testing.T, msg []byte) {
		_, _ = tilestest.NewDecoder().Apply(msg)
	})
}
