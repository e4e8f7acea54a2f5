package rfb

import (
	"encoding/binary"
	"fmt"

	"kvmgate/framebuffer"
)

func init() {
	register(EncodingRRE, func() decoder { return rreDecoder{} })
}

// rreDecoder decodes RRE: a background colour and a list of solid
// subrectangles.
type rreDecoder struct{}

// rreBatch is how many subrectangles RRE reads at a time, so that memory
// does not follow the announced count.
const rreBatch = 4096

func (rreDecoder) decode(d *decodeContext, r framebuffer.Rect) error {
	count, err := d.r.u32()
	if err != nil {
		return fmt.Errorf("rfb: rre header: %w", err)
	}
	bpp := d.conv.bpp
	p, err := d.r.readN(bpp, 4)
	if err != nil {
		return fmt.Errorf("rfb: rre background: %w", err)
	}
	fillRect(d.canvas, r.X, r.Y, r.W, r.H, d.conv.pixel(p))
	size := bpp + 8
	for done := 0; count > 0; {
		k := int(min(count, rreBatch))
		data, err := d.r.readN(k*size, rreBatch*12)
		if err != nil {
			return fmt.Errorf("rfb: rre subrectangle %d: %w", done, err)
		}
		for i := 0; i < k; i++ {
			e := data[i*size : (i+1)*size]
			v := d.conv.pixel(e)
			e = e[bpp:]
			x, y := int(binary.BigEndian.Uint16(e)), int(binary.BigEndian.Uint16(e[2:]))
			w, h := int(binary.BigEndian.Uint16(e[4:])), int(binary.BigEndian.Uint16(e[6:]))
			if x+w > r.W || y+h > r.H {
				return fmt.Errorf("rfb: rre subrectangle %d (%dx%d+%d+%d) outside the %dx%d rectangle", done+i, w, h, x, y, r.W, r.H)
			}
			fillRect(d.canvas, r.X+x, r.Y+y, w, h, v)
		}
		done += k
		count -= uint32(k)
	}
	return nil
}
