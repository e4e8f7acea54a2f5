package rfbserver

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"

	"kvmgate/framebuffer"
)

// zrleTile is the edge of ZRLE's square tiles.
const zrleTile = 64

// zrleMaxPalette is the largest palette ZRLE tiles can use.
const zrleMaxPalette = 127

// zrleEncoder sends 64×64 tiles as solid, packed-palette, RLE,
// palette-RLE or raw, whichever is smallest, through one zlib stream that
// lives as long as the connection.
type zrleEncoder struct {
	plain []byte       // the uncompressed tiles of one rectangle
	out   bytes.Buffer // compressed output of one rectangle
	zw    *zlib.Writer

	vals    [zrleTile * zrleTile]uint32
	palette []uint32
	// A small open-addressing hash from pixel value to palette index, reset
	// for every tile: slot holds index+1, 0 when empty.
	keys [256]uint32
	slot [256]uint8
}

func newZRLEEncoder() *zrleEncoder {
	e := &zrleEncoder{}
	// Level 1 keeps the encoder fast; palettes and runs already did most of
	// the work. NewWriterLevel only fails for an invalid level.
	e.zw, _ = zlib.NewWriterLevel(&e.out, zlib.BestSpeed)
	return e
}

func (e *zrleEncoder) encode(dst []byte, src *framebuffer.Canvas, r framebuffer.Rect, pw *pixelWriter) ([]byte, error) {
	e.plain = e.plain[:0]
	for ty := r.Y; ty < r.Y+r.H; ty += zrleTile {
		th := min(zrleTile, r.Y+r.H-ty)
		for tx := r.X; tx < r.X+r.W; tx += zrleTile {
			tw := min(zrleTile, r.X+r.W-tx)
			e.plain = e.tile(e.plain, src, framebuffer.Rect{X: tx, Y: ty, W: tw, H: th}, pw)
		}
	}
	e.out.Reset()
	if _, err := e.zw.Write(e.plain); err != nil {
		return dst, fmt.Errorf("rfbserver: zrle rect %v: %w", r, err)
	}
	if err := e.zw.Flush(); err != nil {
		return dst, fmt.Errorf("rfbserver: zrle rect %v: %w", r, err)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(e.out.Len()))
	return append(dst, e.out.Bytes()...), nil
}

// lookup returns v's palette index, adding v if the palette has room; ok is
// false when the palette is full and v is not in it.
func (e *zrleEncoder) lookup(v uint32) (idx int, ok bool) {
	h := uint8((v * 2654435761) >> 24)
	for {
		s := e.slot[h]
		if s == 0 {
			if len(e.palette) >= zrleMaxPalette {
				return 0, false
			}
			e.palette = append(e.palette, v)
			e.keys[h], e.slot[h] = v, uint8(len(e.palette))
			return len(e.palette) - 1, true
		}
		if e.keys[h] == v {
			return int(s) - 1, true
		}
		h++
	}
}

// runLenBytes is the size of a ZRLE run length field for a run of n.
func runLenBytes(n int) int { return (n-1)/255 + 1 }

func appendRunLen(dst []byte, n int) []byte {
	n--
	for n >= 255 {
		dst = append(dst, 255)
		n -= 255
	}
	return append(dst, byte(n))
}

func (e *zrleEncoder) tile(dst []byte, src *framebuffer.Canvas, t framebuffer.Rect, pw *pixelWriter) []byte {
	n := t.W * t.H
	vals := e.vals[:n]
	loadValues(vals, src, t, pw)

	// One pass: palette (while it fits) and the runs' costs.
	e.palette = e.palette[:0]
	clear(e.slot[:])
	paletteOK := true
	runs, runLenTotal, palRunCost := 0, 0, 0
	for i := 0; i < n; {
		v := vals[i]
		j := i + 1
		for j < n && vals[j] == v {
			j++
		}
		l := j - i
		runs++
		runLenTotal += runLenBytes(l)
		palRunCost++
		if l > 1 {
			palRunCost += runLenBytes(l)
		}
		if paletteOK {
			_, paletteOK = e.lookup(v)
		}
		i = j
	}
	cpx := pw.cpx
	np := len(e.palette)
	if paletteOK && np == 1 {
		dst = append(dst, 1)
		return pw.appendCPixel(dst, vals[0])
	}

	// Pick the smallest representation.
	const (
		kindRaw = iota
		kindPacked
		kindRLE
		kindPalRLE
	)
	kind, best := kindRaw, n*cpx
	if c := runs*cpx + runLenTotal; c < best {
		kind, best = kindRLE, c
	}
	bits := 0
	if paletteOK {
		if c := np*cpx + palRunCost; c < best {
			kind, best = kindPalRLE, c
		}
		switch {
		case np <= 2:
			bits = 1
		case np <= 4:
			bits = 2
		case np <= 16:
			bits = 4
		}
		if bits > 0 {
			if c := np*cpx + (t.W*bits+7)/8*t.H; c <= best {
				kind = kindPacked
			}
		}
	}

	switch kind {
	case kindRaw:
		dst = append(dst, 0)
		for _, v := range vals {
			dst = pw.appendCPixel(dst, v)
		}
	case kindRLE:
		dst = append(dst, 128)
		for i := 0; i < n; {
			v := vals[i]
			j := i + 1
			for j < n && vals[j] == v {
				j++
			}
			dst = pw.appendCPixel(dst, v)
			dst = appendRunLen(dst, j-i)
			i = j
		}
	case kindPalRLE:
		dst = append(dst, byte(128+np))
		for _, v := range e.palette {
			dst = pw.appendCPixel(dst, v)
		}
		for i := 0; i < n; {
			v := vals[i]
			j := i + 1
			for j < n && vals[j] == v {
				j++
			}
			idx, _ := e.lookup(v)
			if j-i == 1 {
				dst = append(dst, byte(idx))
			} else {
				dst = append(dst, byte(idx)|128)
				dst = appendRunLen(dst, j-i)
			}
			i = j
		}
	case kindPacked:
		dst = append(dst, byte(np))
		for _, v := range e.palette {
			dst = pw.appendCPixel(dst, v)
		}
		for y := 0; y < t.H; y++ {
			row := vals[y*t.W : (y+1)*t.W]
			var acc byte
			nb := 0
			for _, v := range row {
				idx, _ := e.lookup(v)
				acc = acc<<bits | byte(idx)
				nb += bits
				if nb == 8 {
					dst = append(dst, acc)
					acc, nb = 0, 0
				}
			}
			if nb > 0 {
				dst = append(dst, acc<<(8-nb))
			}
		}
	}
	return dst
}
