package rfb

import (
	"kvmgate/framebuffer"
)

func init() {
	register(EncodingTRLE, func() decoder { return newTRLEDecoder() })
}

// trleDecoder decodes TRLE: the tiles of ZRLE (see rleTiles), 16×16 and
// sent without zlib, plus subencodings 127 and 129 that reuse the palette
// of an earlier tile. The last palette is kept for the connection.
type trleDecoder struct {
	r     *reader
	s     tileStream
	tiles rleTiles
}

func newTRLEDecoder() *trleDecoder {
	t := &trleDecoder{tiles: rleTiles{name: "trle", size: 16, reuse: true}}
	t.s.src = t
	t.s.buf = make([]byte, 4<<10)
	return t
}

func (t *trleDecoder) decode(d *decodeContext, r framebuffer.Rect) error {
	t.r = d.r
	t.s.r, t.s.w = 0, 0
	return t.tiles.decodeRect(d, &t.s, r)
}

// fill implements tileSource with exact reads from the connection, so the
// decoder never consumes bytes past its rectangle.
func (t *trleDecoder) fill(p []byte, min int) (int, error) {
	if err := t.r.full(p[:min]); err != nil {
		return 0, err
	}
	return min, nil
}
