// Package tiles encodes screen updates as the binary records of the browser
// wire protocol v1 (docs/protocol.md): fills, indexed and RGB deflate, JPEG,
// copies, cursor shapes and frame ends.
//
// An Encoder belongs to one WebSocket viewer: it holds that connection's
// persistent raw-deflate stream and its scratch buffers, and remembers which
// areas it last sent lossily so they can be refined to lossless later.
package tiles

import (
	"encoding/binary"

	"kvmgate/framebuffer"
)

// Record types of the binary wire protocol.
const (
	RecordResize   = 0x10
	RecordFill     = 0x11
	RecordPNG      = 0x12
	RecordJPEG     = 0x13
	RecordDeflate  = 0x14
	RecordCopy     = 0x15
	RecordCursor   = 0x16
	RecordFrameEnd = 0x17
	// RecordBatch holds fill, copy and deflate records compressed in the
	// connection's deflate stream (docs/protocol.md).
	RecordBatch = 0x18
	// RecordFrameEndShort is a frame end with only the frame number, as
	// a varint.
	RecordFrameEndShort = 0x19
)

// Formats of a deflate record's pixels.
const (
	FormatRGB     = 0
	FormatIndexed = 1
	// FormatPacked is indexed with 1, 2 or 4 bits per pixel (palettes of
	// up to 2, 4 or 16 colours), most significant bits first, each row
	// padded to whole bytes.
	FormatPacked = 2
	// FormatColumns is FormatPacked column by column: each column top to
	// bottom, padded to whole bytes, columns left to right. The encoder
	// uses it for palettes of up to 16 colours.
	FormatColumns = 3
)

// PackedBits returns the bits per pixel of a FormatPacked record with n
// palette colours: 1, 2 or 4; 0 when n is over 16 (format 1 then).
func PackedBits(n int) int {
	switch {
	case n <= 2:
		return 1
	case n <= 4:
		return 2
	case n <= 16:
		return 4
	}
	return 0
}

// MaxCursorSize is the largest cursor edge sent; larger shapes are hidden.
const MaxCursorSize = 256

func appendU16(dst []byte, v int) []byte { return binary.LittleEndian.AppendUint16(dst, uint16(v)) }

func appendU32(dst []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(dst, v) }

func appendRect(dst []byte, r framebuffer.Rect) []byte {
	dst = appendU16(dst, r.X)
	dst = appendU16(dst, r.Y)
	dst = appendU16(dst, r.W)
	return appendU16(dst, r.H)
}

// AppendResize appends a resize record for a w×h screen.
func AppendResize(dst []byte, w, h int) []byte {
	dst = append(dst, RecordResize)
	dst = appendU16(dst, w)
	return appendU16(dst, h)
}

// AppendFill appends a fill record painting r with the colour r, g, b.
func AppendFill(dst []byte, rect framebuffer.Rect, r, g, b byte) []byte {
	dst = append(dst, RecordFill)
	dst = appendRect(dst, rect)
	return append(dst, r, g, b)
}

// AppendCopy appends a copy record for the move m.
func AppendCopy(dst []byte, m framebuffer.Move) []byte {
	dst = append(dst, RecordCopy)
	dst = appendRect(dst, m.Src)
	dst = appendU16(dst, m.DstX)
	return appendU16(dst, m.DstY)
}

// AppendCursor appends a cursor record for c; nil, empty or oversized
// cursors (and ones whose pixels do not match their size) hide the cursor.
func AppendCursor(dst []byte, c *framebuffer.Cursor) []byte {
	dst = append(dst, RecordCursor)
	if c == nil || c.W <= 0 || c.H <= 0 || c.W > MaxCursorSize || c.H > MaxCursorSize ||
		len(c.Pix) != c.W*c.H*4 || c.HotX < 0 || c.HotY < 0 || c.HotX >= c.W || c.HotY >= c.H {
		return append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	}
	dst = appendU16(dst, c.W)
	dst = appendU16(dst, c.H)
	dst = appendU16(dst, c.HotX)
	dst = appendU16(dst, c.HotY)
	return append(dst, c.Pix...)
}

// AppendFrameEnd appends a frame end record for frame number n, in its
// short form (0x19): the type and n as a varint, 2 or 3 bytes for most
// frames where the long form (0x17, which browsers still accept) took 9.
func AppendFrameEnd(dst []byte, n uint32) []byte {
	dst = append(dst, RecordFrameEndShort)
	return binary.AppendUvarint(dst, uint64(n))
}
