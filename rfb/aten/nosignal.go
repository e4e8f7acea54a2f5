package aten

import "kvmgate/framebuffer"

// The picture shown while the BMC reports no signal.
const (
	noSignalW = 640
	noSignalH = 480
	// NoSignalBackground is the background of the no-signal picture
	// (R in the low byte, as framebuffer.Canvas.Fill takes it).
	NoSignalBackground = 0xff202020
	noSignalText       = 0xffc0c0c0
)

// glyphs holds 5×7 bitmaps (one byte per row, bit 4 leftmost) of the
// letters of "NO SIGNAL".
var glyphs = map[rune][7]byte{
	'N': {0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x11},
	'O': {0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e},
	'S': {0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e},
	'I': {0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e},
	'G': {0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f},
	'A': {0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11},
	'L': {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f},
	' ': {},
}

// drawNoSignal paints the no-signal picture: a dark screen with "NO
// SIGNAL" in the middle.
func drawNoSignal(c *framebuffer.Canvas) {
	c.Fill(c.Bounds(), NoSignalBackground)
	const text, scale = "NO SIGNAL", 6
	tw := len(text) * 6 * scale
	x0, y0 := (c.W-tw)/2, (c.H-7*scale)/2
	if x0 < 0 || y0 < 0 {
		return
	}
	for i, r := range text {
		g := glyphs[r]
		for row := 0; row < 7; row++ {
			for col := 0; col < 5; col++ {
				if g[row]&(0x10>>col) != 0 {
					c.Fill(framebuffer.Rect{X: x0 + (i*6+col)*scale, Y: y0 + row*scale, W: scale, H: scale}, noSignalText)
				}
			}
		}
	}
}
