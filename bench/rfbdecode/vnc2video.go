package rfbdecode

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/draw"
	"io"
	"net"

	vnc "github.com/amitbet/vnc2video"

	"kvmgate/rfb"
)

// V2V decodes FramebufferUpdate messages with vnc2video's decoders, the
// baseline kvmgate is compared with. It holds one decoder instance per
// encoding, as vnc2video's own client does, so zlib streams carry over
// between updates, and paints into an *image.RGBA (vnc2video writes alpha
// 1, not 255; only RGB is meaningful).
type V2V struct {
	conn *v2vConn
	// Image is the picture the decoders paint.
	Image *image.RGBA
}

// NewV2V returns a vnc2video decoder set for s's screen and pixel format.
func NewV2V(s *Stream) (*V2V, error) {
	pf, err := s.Format()
	if err != nil {
		return nil, err
	}
	img := image.NewRGBA(image.Rect(0, 0, s.Width, s.Height))
	c := &v2vConn{
		pf: vnc.PixelFormat{
			BPP: pf.BitsPerPixel, Depth: pf.Depth, BigEndian: b2u(pf.BigEndian), TrueColor: b2u(pf.TrueColour),
			RedMax: pf.RedMax, GreenMax: pf.GreenMax, BlueMax: pf.BlueMax,
			RedShift: pf.RedShift, GreenShift: pf.GreenShift, BlueShift: pf.BlueShift,
		},
		w: uint16(s.Width), h: uint16(s.Height),
	}
	c.Reset(img)
	return &V2V{conn: c, Image: img}, nil
}

// Reset gives the decoders fresh state (new zlib streams), as a new
// connection would; the picture is kept.
func (v *V2V) Reset() { v.conn.Reset(v.Image) }

// Decode decodes one FramebufferUpdate message. vnc2video panics on some
// inputs; a panic is returned as an error.
func (v *V2V) Decode(update []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("vnc2video panicked: %v", p)
		}
	}()
	c := v.conn
	c.r.Reset(update)
	var hdr [4]byte
	if _, err := io.ReadFull(&c.r, hdr[:]); err != nil {
		return fmt.Errorf("vnc2video: update header: %w", err)
	}
	n := int(binary.BigEndian.Uint16(hdr[2:]))
	for i := 0; i < n; i++ {
		rect := vnc.NewRectangle()
		if err := rect.Read(c); err != nil {
			return fmt.Errorf("vnc2video: rectangle %d of %d (%v): %w", i, n, rect, err)
		}
	}
	if left := c.r.Len(); left != 0 {
		return fmt.Errorf("vnc2video: %d bytes left after the update", left)
	}
	return nil
}

// HasDecoder reports whether vnc2video has a decoder for e.
func HasDecoder(e rfb.Encoding) bool {
	switch e {
	case rfb.EncodingRaw, rfb.EncodingCopyRect, rfb.EncodingRRE, rfb.EncodingHextile,
		rfb.EncodingZlib, rfb.EncodingTight, rfb.EncodingTightPNG, rfb.EncodingZRLE:
		return true
	}
	return false
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// v2vConn is the vnc2video.Conn the decoders read from: the bytes of one
// update, the pixel format and size, and the decoder instances.
type v2vConn struct {
	r    bytes.Reader
	pf   vnc.PixelFormat
	cm   vnc.ColorMap
	w, h uint16
	encs map[vnc.EncodingType]vnc.Encoding
}

var _ vnc.Conn = (*v2vConn)(nil)

// Reset makes new decoder instances painting into img.
func (c *v2vConn) Reset(img draw.Image) {
	c.encs = map[vnc.EncodingType]vnc.Encoding{
		vnc.EncRaw:      &vnc.RawEncoding{Image: img},
		vnc.EncCopyRect: &vnc.CopyRectEncoding{Image: img},
		vnc.EncRRE:      &vnc.RREEncoding{Image: img},
		vnc.EncHextile:  &vnc.HextileEncoding{Image: img},
		vnc.EncZlib:     &vnc.ZLibEncoding{Image: img},
		vnc.EncTight:    &vnc.TightEncoding{Image: img},
		vnc.EncTightPng: &vnc.TightPngEncoding{Image: img},
		vnc.EncZRLE:     &vnc.ZRLEEncoding{Image: img},
	}
}

func (c *v2vConn) Read(p []byte) (int, error)   { return c.r.Read(p) }
func (c *v2vConn) Write(p []byte) (int, error)  { return len(p), nil }
func (c *v2vConn) Close() error                 { return nil }
func (c *v2vConn) Conn() net.Conn               { return nil }
func (c *v2vConn) Config() interface{}          { return nil }
func (c *v2vConn) Protocol() string             { return "RFB 003.008" }
func (c *v2vConn) PixelFormat() vnc.PixelFormat { return c.pf }
func (c *v2vConn) SetPixelFormat(pf vnc.PixelFormat) error {
	c.pf = pf
	return nil
}
func (c *v2vConn) ColorMap() vnc.ColorMap                       { return c.cm }
func (c *v2vConn) SetColorMap(cm vnc.ColorMap)                  { c.cm = cm }
func (c *v2vConn) Encodings() []vnc.Encoding                    { return nil }
func (c *v2vConn) SetEncodings([]vnc.EncodingType) error        { return nil }
func (c *v2vConn) Width() uint16                                { return c.w }
func (c *v2vConn) Height() uint16                               { return c.h }
func (c *v2vConn) SetWidth(w uint16)                            { c.w = w }
func (c *v2vConn) SetHeight(h uint16)                           { c.h = h }
func (c *v2vConn) DesktopName() []byte                          { return nil }
func (c *v2vConn) SetDesktopName([]byte)                        {}
func (c *v2vConn) Flush() error                                 { return nil }
func (c *v2vConn) Wait()                                        {}
func (c *v2vConn) SetProtoVersion(string)                       {}
func (c *v2vConn) SetSecurityHandler(vnc.SecurityHandler) error { return nil }
func (c *v2vConn) SecurityHandler() vnc.SecurityHandler         { return nil }
func (c *v2vConn) GetEncInstance(t vnc.EncodingType) vnc.Encoding {
	return c.encs[t]
}
