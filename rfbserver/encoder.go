package rfbserver

import (
	"kvmgate/framebuffer"
	"kvmgate/rfb"
)

// encoder writes the payload of one rectangle in one pixel encoding. Each
// encoding lives in its own file (raw.go, hextile.go, zrle.go); a connection
// makes one instance of each encoding it uses, so encoders may keep state
// across rectangles (ZRLE's zlib stream) and reuse their buffers.
type encoder interface {
	// encode appends the payload for rectangle r of src, in the client's
	// pixel format pw, to dst. r lies inside src.
	encode(dst []byte, src *framebuffer.Canvas, r framebuffer.Rect, pw *pixelWriter) ([]byte, error)
}

// encoderFactories lists the pixel encodings the server can send.
var encoderFactories = map[rfb.Encoding]func() encoder{
	rfb.EncodingRaw:     func() encoder { return rawEncoder{} },
	rfb.EncodingHextile: func() encoder { return &hextileEncoder{} },
	rfb.EncodingZRLE:    func() encoder { return newZRLEEncoder() },
}
