package rfbserver

import (
	"kvmgate/framebuffer"
	"kvmgate/rfb"
)

// encoder writes the payload of one rectangle in one pixel encoding. Each
// encoding lives in its own file (raw.go, hextile.go, zrle.go, tight.go); a connection
// makes one instance of each encoding it uses, so encoders may keep state
// across rectangles (ZRLE's zlib stream) and reuse their buffers.
type encoder interface {
	// encode appends the payload for rectangle r of src, in the client's
	// pixel format pw, to dst. r lies inside src.
	encode(dst []byte, src *framebuffer.Canvas, r framebuffer.Rect, pw *pixelWriter) ([]byte, error)
}

// encoderFactories lists the pixel encodings the server can send.
var encoderFactories = map[rfb.Encoding]func() encoder{
	rfb.EncodingRaw:      func() encoder { return rawEncoder{} },
	rfb.EncodingHextile:  func() encoder { return &hextileEncoder{} },
	rfb.EncodingZRLE:     func() encoder { return newZRLEEncoder() },
	rfb.EncodingTight:    func() encoder { return newTightEncoder(false) },
	rfb.EncodingTightPNG: func() encoder { return newTightEncoder(true) },
}

// levelSetter is an encoder that honours the client's quality and
// compression levels (-1 when the client sent none).
type levelSetter interface {
	setLevels(quality, compress int)
}

// lossyEncoder is an encoder that may send lossy pixels: setLossless
// forbids them for the next rectangles, lastLossy reports whether the last
// rectangle was lossy.
type lossyEncoder interface {
	setLossless(on bool)
	lastLossy() bool
}

// rectLimits returns the largest rectangle an encoding takes in one piece:
// at most maxW wide and maxPixels in area.
func rectLimits(e rfb.Encoding) (maxW, maxPixels int) {
	switch e {
	case rfb.EncodingTight, rfb.EncodingTightPNG:
		return tightMaxWidth, tightMaxPixels
	}
	return 1 << 16, maxBandPixels
}
