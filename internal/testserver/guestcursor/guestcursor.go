// Package guestcursor is the hardware cursor shape the test Linux guest's
// helper program sets ("kvmgate-guest cursor"), shared with the tests that
// check what a console client decodes from it.
package guestcursor

// The cursor's size and hotspot.
const (
	W    = 64
	H    = 64
	HotX = 5
	HotY = 9
)

// Pixel returns the ARGB (alpha in the top byte) value of the pixel at x, y:
// an opaque 24×14 block whose colour encodes the position, and fully
// transparent black everywhere else, so that premultiplied and straight
// alpha read the same.
func Pixel(x, y int) uint32 {
	if x < 24 && y < 14 {
		return 0xff000000 | 0xff<<16 | uint32(x*10)<<8 | uint32(y*18)
	}
	return 0
}
