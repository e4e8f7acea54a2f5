package spice

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"

	"kvmgate/framebuffer"
)

// jpegMaxPixelsPerByte bounds the pixels a JPEG stream may claim per byte
// (a flat 4:2:0 baseline image needs about 30 bits per 16×16 MCU, some 70
// pixels per byte).
const jpegMaxPixelsPerByte = 1024

// DecodeJPEG decodes a SPICE JPEG image (a plain JFIF stream) to an RGBA
// canvas.
func DecodeJPEG(data []byte) (*framebuffer.Canvas, error) {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, FormatError(fmt.Sprintf("JPEG image: %v", err))
	}
	if err := framebuffer.CheckSize(cfg.Width, cfg.Height); err != nil {
		return nil, FormatError(fmt.Sprintf("JPEG image of %dx%d", cfg.Width, cfg.Height))
	}
	// A baseline JPEG spends at least a few bits per 8×8 block, even on
	// one flat colour; a header claiming far more pixels than that would
	// only make the decoder allocate for a picture that is not there.
	if cfg.Width*cfg.Height > jpegMaxPixelsPerByte*len(data) {
		return nil, FormatError(fmt.Sprintf("JPEG image of %dx%d in %d bytes", cfg.Width, cfg.Height, len(data)))
	}
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, FormatError(fmt.Sprintf("JPEG image: %v", err))
	}
	b := img.Bounds()
	c, err := framebuffer.NewCanvas(b.Dx(), b.Dy())
	if err != nil {
		return nil, err
	}
	dst := &image.RGBA{Pix: c.Pix, Stride: c.Stride, Rect: image.Rect(0, 0, c.W, c.H)}
	draw.Draw(dst, dst.Rect, img, b.Min, draw.Src)
	return c, nil
}

// jpegAlphaTopDown is SPICE_JPEG_ALPHA_FLAGS_TOP_DOWN.
const jpegAlphaTopDown = 1

// DecodeJPEGAlpha decodes a SPICE JPEG_ALPHA image: data holds a JPEG
// stream of jpegSize bytes with the colour, then an LZ stream of type XXXA
// with the alpha channel of the same size. flags is the image's
// SPICE_JPEG_ALPHA_FLAGS; its top-down bit must agree with the LZ stream's.
func DecodeJPEGAlpha(data []byte, jpegSize uint32, flags uint8) (*framebuffer.Canvas, error) {
	if uint64(jpegSize) > uint64(len(data)) {
		return nil, FormatError(fmt.Sprintf("JPEG_ALPHA image: JPEG of %d bytes in %d", jpegSize, len(data)))
	}
	alpha := data[jpegSize:]
	if len(alpha) < lzHeaderSize {
		return nil, FormatError(fmt.Sprintf("JPEG_ALPHA image: alpha stream of %d bytes", len(alpha)))
	}
	if typ := binary.BigEndian.Uint32(alpha[8:]); typ != lzXXXA {
		return nil, FormatError(fmt.Sprintf("JPEG_ALPHA image: alpha is LZ type %d, want XXXA", typ))
	}
	if td := binary.BigEndian.Uint32(alpha[24:]) != 0; td != (flags&jpegAlphaTopDown != 0) {
		return nil, FormatError(fmt.Sprintf("JPEG_ALPHA image: alpha top-down %v, flags %#x", td, flags))
	}
	c, err := DecodeJPEG(data[:jpegSize])
	if err != nil {
		return nil, err
	}
	a, err := DecodeLZ(alpha, nil)
	if err != nil {
		return nil, fmt.Errorf("JPEG_ALPHA alpha: %w", err)
	}
	if a.W != c.W || a.H != c.H {
		return nil, FormatError(fmt.Sprintf("JPEG_ALPHA image: JPEG %dx%d, alpha %dx%d", c.W, c.H, a.W, a.H))
	}
	for y := 0; y < c.H; y++ {
		d, s := c.Row(0, y, c.W), a.Row(0, y, a.W)
		for i := 3; i < len(d); i += 4 {
			d[i] = s[i]
		}
	}
	return c, nil
}
