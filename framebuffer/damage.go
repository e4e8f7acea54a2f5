package framebuffer

// TileSize is the edge of the square tiles damage is tracked in. Damage
// smaller than a tile is rounded out to whole tiles, which keeps the record
// of what changed bounded by the screen size however long a viewer is away.
const TileSize = 16

// Damage is a set of dirty tiles covering a w×h screen. The zero value is an
// empty set for a 0×0 screen; call Reset to size it.
type Damage struct {
	w, h   int // screen size in pixels
	tw, th int // grid size in tiles
	dirty  []bool
	count  int
}

// Reset sizes the set for a w×h screen and clears it.
func (d *Damage) Reset(w, h int) {
	d.w, d.h = w, h
	d.tw, d.th = (w+TileSize-1)/TileSize, (h+TileSize-1)/TileSize
	n := d.tw * d.th
	if cap(d.dirty) >= n {
		d.dirty = d.dirty[:n]
		clear(d.dirty)
	} else {
		d.dirty = make([]bool, n)
	}
	d.count = 0
}

// Clear empties the set without changing its size.
func (d *Damage) Clear() {
	clear(d.dirty)
	d.count = 0
}

// Empty reports whether no tile is dirty.
func (d *Damage) Empty() bool { return d.count == 0 }

// Add marks every tile that r touches as dirty; r is clipped to the screen.
func (d *Damage) Add(r Rect) {
	r = r.Intersect(Rect{0, 0, d.w, d.h})
	if r.Empty() {
		return
	}
	tx0, ty0 := r.X/TileSize, r.Y/TileSize
	tx1, ty1 := (r.X+r.W-1)/TileSize, (r.Y+r.H-1)/TileSize
	for ty := ty0; ty <= ty1; ty++ {
		row := d.dirty[ty*d.tw : (ty+1)*d.tw]
		for tx := tx0; tx <= tx1; tx++ {
			if !row[tx] {
				row[tx] = true
				d.count++
			}
		}
	}
}

// AddAll marks the whole screen dirty.
func (d *Damage) AddAll() { d.Add(Rect{0, 0, d.w, d.h}) }

// Overlaps reports whether any dirty tile touches r.
func (d *Damage) Overlaps(r Rect) bool {
	r = r.Intersect(Rect{0, 0, d.w, d.h})
	if r.Empty() || d.count == 0 {
		return false
	}
	for ty := r.Y / TileSize; ty <= (r.Y+r.H-1)/TileSize; ty++ {
		for tx := r.X / TileSize; tx <= (r.X+r.W-1)/TileSize; tx++ {
			if d.dirty[ty*d.tw+tx] {
				return true
			}
		}
	}
	return false
}

// Rects returns the dirty area as rectangles, appended to dst: runs of dirty
// tiles in a row, merged with the runs of the rows below that span the same
// columns. Rectangles are clipped to the screen.
func (d *Damage) Rects(dst []Rect) []Rect {
	if d.count == 0 {
		return dst
	}
	// prev holds the runs of the previous tile row with the index in dst of
	// the rectangle each one extends; rows merge when both edges match.
	type run struct{ x0, x1, idx int }
	var prev, cur []run
	for ty := 0; ty < d.th; ty++ {
		cur = cur[:0]
		row := d.dirty[ty*d.tw : (ty+1)*d.tw]
		for tx := 0; tx < d.tw; {
			if !row[tx] {
				tx++
				continue
			}
			x0 := tx
			for tx < d.tw && row[tx] {
				tx++
			}
			merged := -1
			for _, p := range prev {
				if p.x0 == x0 && p.x1 == tx {
					merged = p.idx
					break
				}
			}
			y := ty * TileSize
			h := min(TileSize, d.h-y)
			if merged >= 0 {
				dst[merged].H += h
			} else {
				x := x0 * TileSize
				dst = append(dst, Rect{x, y, min(tx*TileSize, d.w) - x, h})
				merged = len(dst) - 1
			}
			cur = append(cur, run{x0, tx, merged})
		}
		prev, cur = cur, prev
	}
	return dst
}

// DirtyArea returns the number of pixels the dirty tiles cover (tiles at the
// right and bottom edges counted as full tiles).
func (d *Damage) DirtyArea() int { return d.count * TileSize * TileSize }
