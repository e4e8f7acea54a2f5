// Package framebuffer holds the pixels of one console and the damage that
// viewers need to know about.
//
// A backend decodes into a private Canvas that only its reader goroutine
// touches, then publishes each completed update to the shared Framebuffer.
// Viewers subscribe to the Framebuffer, take the union of what changed since
// their last frame, copy those regions out under a read lock and encode them
// on their own time. Nothing a viewer does can make the backend wait longer
// than a memcpy of the damaged area.
package framebuffer

import "fmt"

// BytesPerPixel is the size of one pixel in every Canvas: R, G, B, A bytes.
const BytesPerPixel = 4

// MaxDimension is the largest width or height a Canvas accepts. It bounds the
// memory a hostile backend can make kvmgate allocate (16384² × 4 = 1 GiB is
// already absurd for a console; real servers stay far below).
const MaxDimension = 16384

// MaxPixels bounds width × height (8192×8192, 256 MiB of pixels).
const MaxPixels = 8192 * 8192

// Rect is a rectangle in framebuffer coordinates.
type Rect struct {
	X, Y, W, H int
}

// Empty reports whether r covers no pixels.
func (r Rect) Empty() bool { return r.W <= 0 || r.H <= 0 }

// Area returns the number of pixels r covers.
func (r Rect) Area() int {
	if r.Empty() {
		return 0
	}
	return r.W * r.H
}

// Intersect returns the largest rectangle inside both r and s.
func (r Rect) Intersect(s Rect) Rect {
	x0, y0 := max(r.X, s.X), max(r.Y, s.Y)
	x1, y1 := min(r.X+r.W, s.X+s.W), min(r.Y+r.H, s.Y+s.H)
	if x1 <= x0 || y1 <= y0 {
		return Rect{}
	}
	return Rect{x0, y0, x1 - x0, y1 - y0}
}

// Union returns the smallest rectangle containing both r and s.
func (r Rect) Union(s Rect) Rect {
	if r.Empty() {
		return s
	}
	if s.Empty() {
		return r
	}
	x0, y0 := min(r.X, s.X), min(r.Y, s.Y)
	x1, y1 := max(r.X+r.W, s.X+s.W), max(r.Y+r.H, s.Y+s.H)
	return Rect{x0, y0, x1 - x0, y1 - y0}
}

// Overlaps reports whether r and s share at least one pixel.
func (r Rect) Overlaps(s Rect) bool { return !r.Intersect(s).Empty() }

// In reports whether r lies entirely inside s.
func (r Rect) In(s Rect) bool {
	return r.X >= s.X && r.Y >= s.Y && r.X+r.W <= s.X+s.W && r.Y+r.H <= s.Y+s.H
}

func (r Rect) String() string { return fmt.Sprintf("%dx%d+%d+%d", r.W, r.H, r.X, r.Y) }

// CheckSize returns an error if a w×h canvas would be unreasonable.
func CheckSize(w, h int) error {
	if w < 0 || h < 0 || w > MaxDimension || h > MaxDimension || w*h > MaxPixels {
		return fmt.Errorf("framebuffer: size %dx%d out of range (max %dx%d, %d pixels)", w, h, MaxDimension, MaxDimension, MaxPixels)
	}
	return nil
}

// Canvas is a plain RGBA pixel buffer with no locking. Pix holds rows of
// Stride bytes; each pixel is R, G, B, A with A always 255 for opaque content.
// The zero value is an empty 0×0 canvas.
type Canvas struct {
	W, H   int
	Stride int
	Pix    []byte
}

// NewCanvas allocates a w×h canvas filled with opaque black.
func NewCanvas(w, h int) (*Canvas, error) {
	if err := CheckSize(w, h); err != nil {
		return nil, err
	}
	c := &Canvas{}
	c.Resize(w, h)
	return c, nil
}

// Resize changes the canvas to w×h, keeping the overlapping top-left pixels
// and painting the rest opaque black. The caller must have checked the size
// with CheckSize.
func (c *Canvas) Resize(w, h int) {
	if w == c.W && h == c.H && c.Pix != nil {
		return
	}
	old := *c
	c.W, c.H, c.Stride = w, h, w*BytesPerPixel
	c.Pix = make([]byte, c.Stride*h)
	for i := 3; i < len(c.Pix); i += 4 {
		c.Pix[i] = 0xff
	}
	if old.Pix != nil {
		c.CopyFrom(&old, Rect{0, 0, min(w, old.W), min(h, old.H)})
	}
}

// Bounds returns the rectangle the canvas covers.
func (c *Canvas) Bounds() Rect { return Rect{0, 0, c.W, c.H} }

// Contains reports whether r lies inside the canvas.
func (c *Canvas) Contains(r Rect) bool {
	return r.X >= 0 && r.Y >= 0 && r.W >= 0 && r.H >= 0 && r.X+r.W <= c.W && r.Y+r.H <= c.H
}

// Offset returns the index in Pix of pixel (x, y).
func (c *Canvas) Offset(x, y int) int { return y*c.Stride + x*BytesPerPixel }

// Row returns the bytes of row y from column x, w pixels long.
func (c *Canvas) Row(x, y, w int) []byte {
	o := c.Offset(x, y)
	return c.Pix[o : o+w*BytesPerPixel]
}

// Fill paints r with the colour rgba (R in the low byte, as stored). r must
// lie inside the canvas.
func (c *Canvas) Fill(r Rect, rgba uint32) {
	if r.Empty() {
		return
	}
	p := [4]byte{byte(rgba), byte(rgba >> 8), byte(rgba >> 16), byte(rgba >> 24)}
	first := c.Row(r.X, r.Y, r.W)
	for i := 0; i < len(first); i += 4 {
		copy(first[i:i+4], p[:])
	}
	for y := r.Y + 1; y < r.Y+r.H; y++ {
		copy(c.Row(r.X, y, r.W), first)
	}
}

// At returns the pixel at (x, y) packed as R | G<<8 | B<<16 | A<<24.
// It is for tests and slow paths; hot paths index Pix directly.
func (c *Canvas) At(x, y int) uint32 {
	o := c.Offset(x, y)
	p := c.Pix[o : o+4]
	return uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16 | uint32(p[3])<<24
}

// Move copies the pixels of src to the rectangle of the same size at (dx, dy)
// inside the same canvas, handling overlap like memmove. Both rectangles must
// lie inside the canvas.
func (c *Canvas) Move(src Rect, dx, dy int) {
	if src.Empty() {
		return
	}
	if dy > src.Y {
		for y := src.H - 1; y >= 0; y-- {
			copy(c.Row(dx, dy+y, src.W), c.Row(src.X, src.Y+y, src.W))
		}
		return
	}
	for y := 0; y < src.H; y++ {
		copy(c.Row(dx, dy+y, src.W), c.Row(src.X, src.Y+y, src.W))
	}
}

// CopyFrom copies rectangle r of src into the same place in c. r must lie
// inside both canvases.
func (c *Canvas) CopyFrom(src *Canvas, r Rect) {
	for y := r.Y; y < r.Y+r.H; y++ {
		copy(c.Row(r.X, y, r.W), src.Row(r.X, y, r.W))
	}
}

// Clone returns a deep copy of c.
func (c *Canvas) Clone() *Canvas {
	d := &Canvas{W: c.W, H: c.H, Stride: c.Stride, Pix: make([]byte, len(c.Pix))}
	copy(d.Pix, c.Pix)
	return d
}

// Equal reports whether c and d hold the same pixels (alpha included).
func (c *Canvas) Equal(d *Canvas) bool {
	if c.W != d.W || c.H != d.H {
		return false
	}
	for y := 0; y < c.H; y++ {
		a, b := c.Row(0, y, c.W), d.Row(0, y, d.W)
		if string(a) != string(b) {
			return false
		}
	}
	return true
}
