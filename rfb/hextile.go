package rfb

import (
	"errors"
	"fmt"

	"kvmgate/framebuffer"
)

func init() {
	register(EncodingHextile, func() decoder { return hextileDecoder{} })
}

// Hextile subencoding bits.
const (
	hextileRaw              = 1
	hextileBackground       = 2
	hextileForeground       = 4
	hextileAnySubrects      = 8
	hextileSubrectsColoured = 16
)

// hextileDecoder decodes Hextile: 16×16 tiles, each raw or a background
// with up to 255 solid subrectangles.
//
// The background and foreground colours carry over from tile to tile
// within a rectangle. The specification forbids carrying them over a raw
// tile (and the foreground over a tile with coloured subrectangles); like
// deployed clients, kvmgate keeps the last colours sent instead of failing,
// but a tile that relies on a colour not sent earlier in the rectangle is
// an error.
type hextileDecoder struct{}

func (hextileDecoder) decode(d *decodeContext, r framebuffer.Rect) error {
	var bg, fg uint32
	haveBG, haveFG := false, false
	for ty := r.Y; ty < r.Y+r.H; ty += 16 {
		th := min(16, r.Y+r.H-ty)
		for tx := r.X; tx < r.X+r.W; tx += 16 {
			tw := min(16, r.X+r.W-tx)
			err := hextileTile(d, tx, ty, tw, th, &bg, &fg, &haveBG, &haveFG)
			if err != nil {
				return fmt.Errorf("rfb: hextile tile at %d,%d: %w", tx, ty, err)
			}
		}
	}
	return nil
}

func hextileTile(d *decodeContext, x, y, w, h int, bg, fg *uint32, haveBG, haveFG *bool) error {
	conv, bpp := d.conv, d.conv.bpp
	sub, err := d.r.u8()
	if err != nil {
		return err
	}
	if sub&hextileRaw != 0 {
		src, err := d.r.readN(w*h*bpp, 16*16*4)
		if err != nil {
			return err
		}
		for j := 0; j < h; j++ {
			conv.row(d.canvas.Row(x, y+j, w), src[j*w*bpp:], w)
		}
		return nil
	}
	if sub&hextileBackground != 0 {
		p, err := d.r.readN(bpp, 4)
		if err != nil {
			return err
		}
		*bg, *haveBG = conv.pixel(p), true
	}
	if !*haveBG {
		return errors.New("no background colour")
	}
	if sub&hextileForeground != 0 {
		p, err := d.r.readN(bpp, 4)
		if err != nil {
			return err
		}
		*fg, *haveFG = conv.pixel(p), true
	}
	fillRect(d.canvas, x, y, w, h, *bg)
	if sub&hextileAnySubrects == 0 {
		return nil
	}
	count, err := d.r.u8()
	if err != nil {
		return err
	}
	coloured := sub&hextileSubrectsColoured != 0
	if !coloured && !*haveFG {
		return errors.New("no foreground colour")
	}
	size := 2
	if coloured {
		size += bpp
	}
	data, err := d.r.readN(int(count)*size, 255*6)
	if err != nil {
		return err
	}
	v := *fg
	for i := 0; i < int(count); i++ {
		e := data[i*size : (i+1)*size]
		if coloured {
			v = conv.pixel(e)
			e = e[bpp:]
		}
		sx, sy := int(e[0]>>4), int(e[0]&15)
		sw, sh := int(e[1]>>4)+1, int(e[1]&15)+1
		if sx+sw > w || sy+sh > h {
			return fmt.Errorf("subrectangle %d (%dx%d+%d+%d) outside the %dx%d tile", i, sw, sh, sx, sy, w, h)
		}
		fillRect(d.canvas, x+sx, y+sy, sw, sh, v)
	}
	return nil
}
