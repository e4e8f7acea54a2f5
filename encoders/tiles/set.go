package tiles

import "kvmgate/framebuffer"

// palette maps up to 256 RGB colours (packed R | G<<8 | B<<16) to indices
// with a small open-addressing hash table that is cleared in O(1) by bumping
// a generation counter.
type palette struct {
	n       int
	colours [256]uint32
	keys    [paletteSlots]uint32
	idx     [paletteSlots]uint8
	gen     [paletteSlots]uint32
	cur     uint32
}

const paletteSlots = 512

func (p *palette) reset() {
	p.n = 0
	p.cur++
	if p.cur == 0 {
		clear(p.gen[:])
		p.cur = 1
	}
}

func paletteHash(c uint32) uint32 { return (c * 0x9E3779B1) >> (32 - 9) }

// add inserts c and reports whether it is in the palette afterwards (false
// when the palette is full).
func (p *palette) add(c uint32) bool {
	for h := paletteHash(c); ; h = (h + 1) & (paletteSlots - 1) {
		if p.gen[h] != p.cur {
			if p.n == len(p.colours) {
				return false
			}
			p.gen[h], p.keys[h], p.idx[h] = p.cur, c, uint8(p.n)
			p.colours[p.n] = c
			p.n++
			return true
		}
		if p.keys[h] == c {
			return true
		}
	}
}

// has reports whether c is in the palette.
func (p *palette) has(c uint32) bool {
	for h := paletteHash(c); ; h = (h + 1) & (paletteSlots - 1) {
		if p.gen[h] != p.cur {
			return false
		}
		if p.keys[h] == c {
			return true
		}
	}
}

// index returns the index of c, which must have been added.
func (p *palette) index(c uint32) byte {
	for h := paletteHash(c); ; h = (h + 1) & (paletteSlots - 1) {
		if p.gen[h] != p.cur {
			return 0
		}
		if p.keys[h] == c {
			return p.idx[h]
		}
	}
}

// setTile is the granularity of the lossy-area record.
const setTile = 16

// tileSet is a set of setTile×setTile tiles of a w×h screen.
type tileSet struct {
	w, h, tw, th int
	bits         []bool
	count        int
}

func (s *tileSet) size(w, h int) {
	if w == s.w && h == s.h && s.bits != nil {
		return
	}
	s.w, s.h = w, h
	s.tw, s.th = (w+setTile-1)/setTile, (h+setTile-1)/setTile
	s.bits = make([]bool, s.tw*s.th)
	s.count = 0
}

func (s *tileSet) clearAll() {
	clear(s.bits)
	s.count = 0
}

// span returns the tile range r touches, clipped; ok is false if none.
func (s *tileSet) span(r framebuffer.Rect) (tx0, ty0, tx1, ty1 int, ok bool) {
	r = r.Intersect(framebuffer.Rect{W: s.w, H: s.h})
	if r.Empty() {
		return 0, 0, 0, 0, false
	}
	return r.X / setTile, r.Y / setTile, (r.X + r.W - 1) / setTile, (r.Y + r.H - 1) / setTile, true
}

// mark adds every tile r touches.
func (s *tileSet) mark(r framebuffer.Rect) {
	tx0, ty0, tx1, ty1, ok := s.span(r)
	if !ok {
		return
	}
	for ty := ty0; ty <= ty1; ty++ {
		for tx := tx0; tx <= tx1; tx++ {
			if i := ty*s.tw + tx; !s.bits[i] {
				s.bits[i] = true
				s.count++
			}
		}
	}
}

// clear removes the tiles that r covers entirely.
func (s *tileSet) clear(r framebuffer.Rect) {
	if s.count == 0 {
		return
	}
	tx0, ty0, tx1, ty1, ok := s.span(r)
	if !ok {
		return
	}
	for ty := ty0; ty <= ty1; ty++ {
		y0, y1 := ty*setTile, min(ty*setTile+setTile, s.h)
		if y0 < r.Y || y1 > r.Y+r.H {
			continue
		}
		for tx := tx0; tx <= tx1; tx++ {
			x0, x1 := tx*setTile, min(tx*setTile+setTile, s.w)
			if x0 < r.X || x1 > r.X+r.W {
				continue
			}
			if i := ty*s.tw + tx; s.bits[i] {
				s.bits[i] = false
				s.count--
			}
		}
	}
}

// any reports whether r touches a tile of the set.
func (s *tileSet) any(r framebuffer.Rect) bool {
	if s.count == 0 {
		return false
	}
	tx0, ty0, tx1, ty1, ok := s.span(r)
	if !ok {
		return false
	}
	for ty := ty0; ty <= ty1; ty++ {
		for tx := tx0; tx <= tx1; tx++ {
			if s.bits[ty*s.tw+tx] {
				return true
			}
		}
	}
	return false
}

// rects appends the set as horizontal runs of tiles, clipped to the screen.
func (s *tileSet) rects(dst []framebuffer.Rect) []framebuffer.Rect {
	if s.count == 0 {
		return dst
	}
	for ty := 0; ty < s.th; ty++ {
		row := s.bits[ty*s.tw : (ty+1)*s.tw]
		for tx := 0; tx < s.tw; {
			if !row[tx] {
				tx++
				continue
			}
			x0 := tx
			for tx < s.tw && row[tx] {
				tx++
			}
			x, y := x0*setTile, ty*setTile
			dst = append(dst, framebuffer.Rect{X: x, Y: y, W: min(tx*setTile, s.w) - x, H: min(setTile, s.h-y)})
		}
	}
	return dst
}
