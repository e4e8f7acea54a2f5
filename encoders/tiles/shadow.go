package tiles

import (
	"bytes"
	"hash/maphash"

	"kvmgate/framebuffer"
)

// The shadow is the encoder's copy of what the browser's canvas holds. With
// it, Encode sends only the rows of a damaged rectangle that differ from
// what the browser already shows, and finds content that moved vertically
// (a console scrolling without CopyRect, or scroll moves that coalesced
// into damage) and sends it as one copy record.
//
// The shadow is trusted only between a ForgetLossy (which the caller makes
// with every resize record: the browser's canvas is then black) and a
// screen size change it did not see. Rectangles touching lossily sent tiles
// are encoded in full, because there the browser's pixels differ from the
// shadow's exact ones.

// minScrollRows is the least net number of rows a copy must save.
const minScrollRows = 4

// maxVoteRows is how often a row may occur in the old picture and still
// vote for an offset; blank and repeated rows would vote for everything.
const maxVoteRows = 4

// mergeGap is the most unchanged rows between two changed bands that are
// still sent as one rectangle (each record costs a header and a flush).
const mergeGap = 2

type shadow struct {
	c     framebuffer.Canvas
	ok    bool // c equals the browser's canvas
	black bool // a resize record went out: c is to become black
	seed  maphash.Seed
	newH  []uint64 // row hashes of the rectangle in the source
	oldH  []uint64 // row hashes of the shadow's strip over the rectangle, whole height
	// The shadow's row hashes over the columns strip..strip+stripW, for
	// every row of the screen; stale rows are rehashed when needed.
	strip, stripW int
	stripH        []uint64
	stripOK       []bool
	rows          map[uint64]int // changed row hash -> index in cands
	cands         []candidate
	votes         map[int]int
	changed       []bool
}

// candidate is where a row of new content occurs in the shadow.
type candidate struct {
	n  int // occurrences
	at [maxVoteRows]int
}

// sync makes the shadow match src's size, or distrusts it.
func (s *shadow) sync(src *framebuffer.Canvas) {
	if s.black {
		s.black = false
		s.c.Resize(src.W, src.H)
		s.c.Fill(s.c.Bounds(), 0xff000000)
		s.ok = true
		s.stripW = 0
		return
	}
	if s.ok && (s.c.W != src.W || s.c.H != src.H) {
		s.ok = false
	}
}

// touched notes that the shadow's rectangle r changed.
func (s *shadow) touched(r framebuffer.Rect) {
	if s.stripW == 0 || r.X >= s.strip+s.stripW || r.X+r.W <= s.strip {
		return
	}
	for y := max(r.Y, 0); y < min(r.Y+r.H, len(s.stripOK)); y++ {
		s.stripOK[y] = false
	}
}

// stripRows returns the hashes of every shadow row over columns x..x+w.
func (s *shadow) stripRows(x, w int) []uint64 {
	if s.strip != x || s.stripW != w || len(s.stripH) != s.c.H {
		s.strip, s.stripW = x, w
		s.stripH = make([]uint64, s.c.H)
		s.stripOK = make([]bool, s.c.H)
	}
	for y, ok := range s.stripOK {
		if !ok {
			s.stripH[y] = maphash.Bytes(s.seed, s.c.Row(x, y, w))
			s.stripOK[y] = true
		}
	}
	return s.stripH
}

func (s *shadow) hashRows(dst []uint64, c *framebuffer.Canvas, r framebuffer.Rect) []uint64 {
	dst = dst[:0]
	for y := r.Y; y < r.Y+r.H; y++ {
		dst = append(dst, maphash.Bytes(s.seed, c.Row(r.X, y, r.W)))
	}
	return dst
}

// scroll looks for the vertical offset d at which most rows of r in src
// equal the shadow's rows d above them, anywhere on the screen (a console
// that scrolls repaints line by line, each line from the one below). It
// returns the copy worth sending (ok false when none saves minScrollRows
// rows). s.newH must hold the rectangle's source row hashes.
func (s *shadow) scroll(r framebuffer.Rect) (m framebuffer.Move, ok bool) {
	old := s.stripRows(r.X, r.W)
	// Index the rectangle's changed rows by hash (few), then find where
	// each occurs in the shadow's strip (all rows, one pass).
	if s.rows == nil {
		s.rows, s.votes = map[uint64]int{}, map[int]int{}
	}
	clear(s.rows)
	clear(s.votes)
	s.cands = s.cands[:0]
	for i, h := range s.newH {
		if h == old[r.Y+i] {
			continue
		}
		if _, dup := s.rows[h]; !dup {
			s.rows[h] = len(s.cands)
			s.cands = append(s.cands, candidate{})
		}
	}
	if len(s.cands) == 0 {
		return m, false
	}
	for j, h := range old {
		if k, ok := s.rows[h]; ok {
			c := &s.cands[k]
			if c.n < len(c.at) {
				c.at[c.n] = j
			}
			c.n++
		}
	}
	for i, h := range s.newH {
		if h == old[r.Y+i] {
			continue
		}
		c := &s.cands[s.rows[h]]
		if c.n > maxVoteRows {
			continue
		}
		for _, j := range c.at[:c.n] {
			s.votes[r.Y+i-j]++
		}
	}
	best, bestVotes := 0, 0
	for d, v := range s.votes {
		// Ties go to the smaller offset, then to scrolling up, so that
		// the choice does not depend on map order.
		if v > bestVotes || v == bestVotes && (abs(d) < abs(best) || abs(d) == abs(best) && d < best) {
			best, bestVotes = d, v
		}
	}
	if bestVotes < minScrollRows {
		return m, false
	}
	d := best
	// The best band of destination rows: +1 for a row the copy fixes, -1
	// for one it breaks (Kadane).
	lo, hi := max(0, d-r.Y), min(r.H, s.c.H+d-r.Y)
	score, start := 0, lo
	bestScore, b0, b1 := 0, 0, 0
	for i := lo; i < hi; i++ {
		moved, same := s.newH[i] == old[r.Y+i-d], s.newH[i] == old[r.Y+i]
		switch {
		case moved && !same:
			score++
		case !moved && same:
			score--
		}
		if score <= 0 {
			score, start = 0, i+1
			continue
		}
		if score > bestScore {
			bestScore, b0, b1 = score, start, i+1
		}
	}
	if bestScore < minScrollRows {
		return m, false
	}
	src := framebuffer.Rect{X: r.X, Y: r.Y + b0 - d, W: r.W, H: b1 - b0}
	return framebuffer.Move{Src: src, DstX: r.X, DstY: r.Y + b0}, true
}

// bands returns the rectangles of r whose rows differ between src and the
// shadow, narrowed to the columns that differ. Rows with equal hashes are
// compared byte by byte before being left out.
func (s *shadow) bands(dst []framebuffer.Rect, src *framebuffer.Canvas, r framebuffer.Rect) []framebuffer.Rect {
	s.changed = s.changed[:0]
	for i := range r.H {
		s.changed = append(s.changed, s.newH[i] != s.oldH[r.Y+i] ||
			!bytes.Equal(src.Row(r.X, r.Y+i, r.W), s.c.Row(r.X, r.Y+i, r.W)))
	}
	for i := 0; i < r.H; {
		if !s.changed[i] {
			i++
			continue
		}
		j, gap := i+1, 0
		for k := i + 1; k < r.H && gap <= mergeGap; k++ {
			if s.changed[k] {
				j, gap = k+1, 0
			} else {
				gap++
			}
		}
		band := framebuffer.Rect{X: r.X, Y: r.Y + i, W: r.W, H: j - i}
		dst = append(dst, s.narrow(src, band))
		i = j
	}
	return dst
}

// narrow trims the columns of b at either side in which src equals the
// shadow.
func (s *shadow) narrow(src *framebuffer.Canvas, b framebuffer.Rect) framebuffer.Rect {
	left, right := b.W, 0 // first differing column, one past the last
	for y := b.Y; y < b.Y+b.H; y++ {
		a, o := src.Row(b.X, y, b.W), s.c.Row(b.X, y, b.W)
		if bytes.Equal(a, o) {
			continue
		}
		l := 0
		for l < left && bytes.Equal(a[4*l:4*l+4], o[4*l:4*l+4]) {
			l++
		}
		left = min(left, l)
		rr := b.W
		for rr > right && bytes.Equal(a[4*rr-4:4*rr], o[4*rr-4:4*rr]) {
			rr--
		}
		right = max(right, rr)
	}
	if left >= right {
		return b
	}
	return framebuffer.Rect{X: b.X + left, Y: b.Y, W: right - left, H: b.H}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
