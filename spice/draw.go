package spice

import "kvmgate/framebuffer"

// This file holds the raster helpers the display channel draws with. All of
// them take the part of the destination to paint (already clipped to the
// surface and the clip rectangles), the drawing's box, and the source image
// with the source area that maps onto the box.

// sampler maps destination coordinates inside box to source coordinates in
// src (the area of the image that covers the box), scaling when the two
// differ in size (nearest neighbour).
type sampler struct {
	box, src framebuffer.Rect
	scaled   bool
}

func newSampler(box, src framebuffer.Rect) sampler {
	return sampler{box: box, src: src, scaled: box.W != src.W || box.H != src.H}
}

func (s sampler) x(x int) int {
	if !s.scaled {
		return s.src.X + x - s.box.X
	}
	return s.src.X + (x-s.box.X)*s.src.W/s.box.W
}

func (s sampler) y(y int) int {
	if !s.scaled {
		return s.src.Y + y - s.box.Y
	}
	return s.src.Y + (y-s.box.Y)*s.src.H/s.box.H
}

// blit copies img's src area, scaled to box, into the part p of dst. Source
// pixels outside img leave the destination as it was. The result is opaque.
func blit(dst *framebuffer.Canvas, p, box framebuffer.Rect, img *framebuffer.Canvas, src framebuffer.Rect, _ bool, _ bool) {
	if box.Empty() || src.Empty() {
		return
	}
	s := newSampler(box, src)
	if !s.scaled {
		// Clip p to where the image has pixels.
		valid := framebuffer.Rect{X: box.X - src.X, Y: box.Y - src.Y, W: img.W, H: img.H}
		q := p.Intersect(valid)
		if q.Empty() {
			return
		}
		sx := s.x(q.X)
		for y := q.Y; y < q.Y+q.H; y++ {
			row := dst.Row(q.X, y, q.W)
			copy(row, img.Row(sx, s.y(y), q.W))
			for i := 3; i < len(row); i += 4 {
				row[i] = 0xff
			}
		}
		return
	}
	for y := p.Y; y < p.Y+p.H; y++ {
		sy := s.y(y)
		if sy < 0 || sy >= img.H {
			continue
		}
		row := dst.Row(p.X, y, p.W)
		for x := 0; x < p.W; x++ {
			sx := s.x(p.X + x)
			if sx < 0 || sx >= img.W {
				continue
			}
			o := img.Offset(sx, sy)
			copy(row[4*x:4*x+3], img.Pix[o:o+3])
			row[4*x+3] = 0xff
		}
	}
}

// transparent is blit that skips source pixels of the colour key (RGBA).
func transparent(dst *framebuffer.Canvas, p, box framebuffer.Rect, img *framebuffer.Canvas, src framebuffer.Rect, key uint32) {
	if box.Empty() || src.Empty() {
		return
	}
	s := newSampler(box, src)
	kr, kg, kb := byte(key), byte(key>>8), byte(key>>16)
	for y := p.Y; y < p.Y+p.H; y++ {
		sy := s.y(y)
		if sy < 0 || sy >= img.H {
			continue
		}
		row := dst.Row(p.X, y, p.W)
		for x := 0; x < p.W; x++ {
			sx := s.x(p.X + x)
			if sx < 0 || sx >= img.W {
				continue
			}
			o := img.Offset(sx, sy)
			px := img.Pix[o : o+3]
			if px[0] == kr && px[1] == kg && px[2] == kb {
				continue
			}
			copy(row[4*x:4*x+3], px)
			row[4*x+3] = 0xff
		}
	}
}

// alphaBlend composites img over dst with the global alpha a and, when
// srcAlpha is set, the image's own premultiplied alpha.
func alphaBlend(dst *framebuffer.Canvas, p, box framebuffer.Rect, img *framebuffer.Canvas, src framebuffer.Rect, a uint8, srcAlpha bool) {
	if box.Empty() || src.Empty() {
		return
	}
	s := newSampler(box, src)
	g := uint32(a)
	for y := p.Y; y < p.Y+p.H; y++ {
		sy := s.y(y)
		if sy < 0 || sy >= img.H {
			continue
		}
		row := dst.Row(p.X, y, p.W)
		for x := 0; x < p.W; x++ {
			sx := s.x(p.X + x)
			if sx < 0 || sx >= img.W {
				continue
			}
			o := img.Offset(sx, sy)
			sa := uint32(255)
			if srcAlpha {
				sa = uint32(img.Pix[o+3])
			}
			k := 255 - (sa*g+127)/255
			for c := 0; c < 3; c++ {
				v := (uint32(img.Pix[o+c])*g + uint32(row[4*x+c])*k + 127) / 255
				row[4*x+c] = byte(min(v, 255))
			}
			row[4*x+3] = 0xff
		}
	}
}

// tile fills p with the pattern pat whose origin is at (ox, oy).
func tile(dst *framebuffer.Canvas, p framebuffer.Rect, pat *framebuffer.Canvas, ox, oy int) {
	for y := p.Y; y < p.Y+p.H; y++ {
		py := ((y-oy)%pat.H + pat.H) % pat.H
		row := dst.Row(p.X, y, p.W)
		for x := 0; x < p.W; x++ {
			px := ((p.X+x-ox)%pat.W + pat.W) % pat.W
			o := pat.Offset(px, py)
			copy(row[4*x:4*x+3], pat.Pix[o:o+3])
			row[4*x+3] = 0xff
		}
	}
}

// invert inverts the colour of every pixel in p.
func invert(dst *framebuffer.Canvas, p framebuffer.Rect) {
	for y := p.Y; y < p.Y+p.H; y++ {
		row := dst.Row(p.X, y, p.W)
		for i := 0; i < len(row); i += 4 {
			row[i] ^= 0xff
			row[i+1] ^= 0xff
			row[i+2] ^= 0xff
		}
	}
}
