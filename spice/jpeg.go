package spice

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"

	"kvmgate/framebuffer"
)

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
