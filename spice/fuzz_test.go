package spice

import (
	"encoding/binary"
	"io"
	"log/slog"
	"testing"

	"kvmgate/framebuffer"
)

func FuzzLinkReply(f *testing.F) {
	rep := binary.LittleEndian.AppendUint32(nil, 0)
	rep = append(rep, make([]byte, pubKeySize)...)
	rep = binary.LittleEndian.AppendUint32(rep, 1)
	rep = binary.LittleEndian.AppendUint32(rep, 1)
	rep = binary.LittleEndian.AppendUint32(rep, uint32(len(rep)+4))
	rep = binary.LittleEndian.AppendUint32(rep, 0xb)
	rep = binary.LittleEndian.AppendUint32(rep, 0x1)
	f.Add(rep)
	f.Add([]byte{7, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 4 {
			return
		}
		rep, err := decodeLinkReply(b)
		if err == nil && rep.err == LinkOK {
			encryptTicket(rep.pubKey, "x")
		}
	})
}

func FuzzDecodeLZ(f *testing.F) {
	f.Add(readTestdata(f, "seabios-lz.bin"), false)
	f.Add(lzStream(lzPLT4BE, 4, 2, 2, false, 3, 0x12, 0x34, 0x56, 0x78), true)
	f.Add(lzStream(lzRGBA, 2, 1, 8, true, 1, 1, 2, 3, 4, 5, 6, 1, 9, 9), false)
	f.Fuzz(func(t *testing.T, b []byte, withPalette bool) {
		var pal []uint32
		if withPalette {
			pal = []uint32{0xff0000, 0xff00, 0xff}
		}
		if c, err := DecodeLZ(b, pal); err == nil && len(c.Pix) != c.W*c.H*4 {
			t.Fatal("bad canvas")
		}
	})
}

func FuzzDecodeQUIC(f *testing.F) {
	// The captured stream with a header claiming a small image: the decoder
	// stops after the first pixels, which keeps fuzzing fast (the whole
	// image is decoded by TestDecodeCapturedImages).
	full := readTestdata(f, "seabios-quic.bin")
	small := append([]byte(nil), full[:512]...)
	binary.LittleEndian.PutUint32(small[12:], 16)
	binary.LittleEndian.PutUint32(small[16:], 4)
	f.Add(small)
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := DecodeQUIC(b); err == nil && len(c.Pix) != c.W*c.H*4 {
			t.Fatal("bad canvas")
		}
	})
}

func FuzzDecodeBitmap(f *testing.F) {
	f.Add(uint8(Bitmap32Bit), uint8(4), uint8(3), uint8(16), false, make([]byte, 48))
	f.Add(uint8(Bitmap1BitBE), uint8(9), uint8(2), uint8(2), true, []byte{0xa5, 0x80, 0x5a, 0})
	f.Fuzz(func(t *testing.T, format, w, h, stride uint8, topDown bool, data []byte) {
		DecodeBitmap(BitmapFormat(format), int(w), int(h), int(stride), topDown, data, []uint32{1, 2, 3})
	})
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(uint8(cursorMono), uint8(8), uint8(2), []byte{0xff, 0, 0, 0xff})
	f.Add(uint8(cursorAlpha), uint8(1), uint8(1), []byte{1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, typ, w, h uint8, data []byte) {
		DecodeCursor(typ, int(w), int(h), data)
	})
}

// fuzzDisplay returns a display with a 64×48 primary surface that logs
// nowhere and has no channel to send on.
func fuzzDisplay() *display {
	d := newDisplay(&channel{log: slog.New(slog.NewTextHandler(io.Discard, nil))}, framebuffer.New(), CompressionServer,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	c, _ := framebuffer.NewCanvas(64, 48)
	d.primary = &surface{c: c, primary: true}
	d.surfaces[0] = d.primary
	return d
}

func FuzzDisplayMessage(f *testing.F) {
	le := binary.LittleEndian
	// DRAW_COPY of a 2×2 32-bit bitmap at (1,1), no clip.
	var b []byte
	b = le.AppendUint32(b, 0)
	for _, v := range []int32{1, 1, 3, 3} {
		b = le.AppendUint32(b, uint32(v))
	}
	b = append(b, 0)
	imgOff := len(b) + 4 + 16 + 2 + 1 + 1 + 8 + 4
	b = le.AppendUint32(b, uint32(imgOff))
	for _, v := range []int32{0, 0, 2, 2} {
		b = le.AppendUint32(b, uint32(v))
	}
	b = le.AppendUint16(b, ropOpPut)
	b = append(b, 0, 0)
	b = append(b, make([]byte, 12)...)
	b = le.AppendUint64(b, 7)
	b = append(b, imageBitmap, imageCacheMe)
	b = le.AppendUint32(b, 2)
	b = le.AppendUint32(b, 2)
	b = append(b, byte(Bitmap32Bit), bitmapTopDown)
	b = le.AppendUint32(b, 2)
	b = le.AppendUint32(b, 2)
	b = le.AppendUint32(b, 8)
	b = le.AppendUint32(b, 0)
	b = append(b, make([]byte, 16)...)
	f.Add(uint16(msgDisplayDrawCopy), b)
	// DRAW_FILL with one clip rectangle.
	fill := le.AppendUint32(nil, 0)
	for _, v := range []int32{0, 0, 10, 10} {
		fill = le.AppendUint32(fill, uint32(v))
	}
	fill = append(fill, clipTypeRects)
	fill = le.AppendUint32(fill, 1)
	for _, v := range []int32{2, 2, 5, 5} {
		fill = le.AppendUint32(fill, uint32(v))
	}
	fill = append(fill, brushSolid)
	fill = le.AppendUint32(fill, 0xff8800)
	fill = le.AppendUint16(fill, ropOpPut)
	fill = append(fill, make([]byte, 13)...)
	f.Add(uint16(msgDisplayDrawFill), fill)
	cb := le.AppendUint32(nil, 0)
	for _, v := range []int32{0, 10, 20, 30} {
		cb = le.AppendUint32(cb, uint32(v))
	}
	cb = append(cb, 0)
	cb = le.AppendUint32(cb, 5)
	cb = le.AppendUint32(cb, 5)
	f.Add(uint16(msgDisplayCopyBits), cb)
	sc := le.AppendUint32(nil, 1)
	sc = le.AppendUint32(sc, 32)
	sc = le.AppendUint32(sc, 16)
	sc = le.AppendUint32(sc, 32)
	sc = le.AppendUint32(sc, 0)
	f.Add(uint16(msgDisplaySurfaceCreate), sc)
	f.Fuzz(func(t *testing.T, typ uint16, body []byte) {
		d := fuzzDisplay()
		if typ == msgDisplayInvalAllPixmaps {
			return // needs a running channel
		}
		d.handleMessage(message{typ: typ, body: body})
		d.handleMessage(message{typ: typ, body: body})
	})
}

func FuzzMainMessages(f *testing.F) {
	f.Add([]byte{2, 0, 0, 0, 2, 0, 3, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		parseChannelsList(b)
		parseMainInit(b)
		migrationTarget(b)
		c := newCursor(framebuffer.New(), slog.New(slog.NewTextHandler(io.Discard, nil)))
		c.handleMessage(message{typ: msgCursorSet, body: b})
		c.handleMessage(message{typ: msgCursorInit, body: b})
	})
}
