package spice

import (
	"fmt"
	"log/slog"
	"sync/atomic"

	"kvmgate/framebuffer"
)

// Display channel messages.
const (
	msgDisplayMode             = 101
	msgDisplayMark             = 102
	msgDisplayReset            = 103
	msgDisplayCopyBits         = 104
	msgDisplayInvalList        = 105
	msgDisplayInvalAllPixmaps  = 106
	msgDisplayInvalPalette     = 107
	msgDisplayInvalAllPalettes = 108
	msgDisplayStreamCreate     = 122
	msgDisplayStreamDestroyAll = 126
	msgDisplayDrawFill         = 302
	msgDisplayDrawOpaque       = 303
	msgDisplayDrawCopy         = 304
	msgDisplayDrawBlend        = 305
	msgDisplayDrawBlackness    = 306
	msgDisplayDrawWhiteness    = 307
	msgDisplayDrawInvers       = 308
	msgDisplayDrawRop3         = 309
	msgDisplayDrawStroke       = 310
	msgDisplayDrawText         = 311
	msgDisplayDrawTransparent  = 312
	msgDisplayDrawAlphaBlend   = 313
	msgDisplaySurfaceCreate    = 314
	msgDisplaySurfaceDestroy   = 315
	msgDisplayStreamDataSized  = 316
	msgDisplayMonitorsConfig   = 317
	msgDisplayDrawComposite    = 318

	msgcDisplayInit                 = 101
	msgcDisplayPreferredCompression = 103

	displayCapMonitorsConfig = 1
	displayCapLZ4            = 5
	displayCapPrefCompress   = 6

	surfaceFlagPrimary = 1

	ropOpPut       = 1 << 3
	ropBlackness   = 1 << 7
	ropWhiteness   = 1 << 8
	ropInvers      = 1 << 9
	ropInversSrc   = 1 << 0
	brushNone      = 0
	brushSolid     = 1
	brushPattern   = 2
	clipTypeRects  = 1
	scaleNearest   = 1
	maxClipRects   = 4096
	maxSurfaces    = 1024
	maxSurfacePix  = 48 << 20 // all surfaces together, in pixels
	pixmapCachePix = 8 << 20  // advertised pixmap cache size, in pixels
)

// displayCaps are the display channel capabilities this client offers.
func displayCaps() []uint32 {
	return capBits(displayCapMonitorsConfig, displayCapLZ4, displayCapPrefCompress)
}

// surface is one SPICE drawing surface.
type surface struct {
	c       *framebuffer.Canvas
	primary bool
}

// display decodes one display channel. Everything in it is owned by the
// channel's reader goroutine.
type display struct {
	ch   *channel
	fb   *framebuffer.Framebuffer
	log  *slog.Logger
	comp Compression

	surfaces   map[uint32]*surface
	surfacePix int
	primary    *surface
	primaryID  uint32
	// head is the part of the primary surface the guest shows on its
	// monitor (MONITORS_CONFIG), when that is less than the whole surface;
	// then view holds a copy of it, which is what gets published, and
	// viewDirty lists the areas of view to refresh from the surface.
	head      framebuffer.Rect
	view      *framebuffer.Canvas
	viewDirty []framebuffer.Rect
	batch     framebuffer.Batch
	resized   bool
	images    imageCache
	palettes  map[uint64][]uint32
	warned    map[string]bool
	counts    *[256]atomic.Uint64 // images decoded by type, for tests and stats
	// marks counts MARK messages: the server sends one after the
	// complete surface image that starts every display channel.
	marks int
	// onMark, if set, is called after each MARK has been published.
	onMark func()
}

func newDisplay(ch *channel, fb *framebuffer.Framebuffer, comp Compression, log *slog.Logger) *display {
	return &display{
		ch: ch, fb: fb, log: log, comp: comp,
		surfaces: map[uint32]*surface{},
		images:   imageCache{entries: map[uint64]*framebuffer.Canvas{}, limit: pixmapCachePix},
		palettes: map[uint64][]uint32{},
		warned:   map[string]bool{},
	}
}

// start sends DISPLAY_INIT (pixmap cache, no GLZ dictionary) and the
// preferred image compression.
func (d *display) start() error {
	b := []byte{1}
	b = le.AppendUint64(b, pixmapCachePix)
	b = append(b, 0)
	b = le.AppendUint32(b, 0)
	if err := d.ch.send(msgcDisplayInit, b); err != nil {
		return err
	}
	if d.comp != CompressionServer && hasCap(d.ch.caps.chanCaps, displayCapPrefCompress) {
		return d.ch.send(msgcDisplayPreferredCompression, []byte{byte(d.comp)})
	}
	return nil
}

// warnOnce logs something unsupported the first time it happens.
func (d *display) warnOnce(what string, args ...any) {
	if d.warned[what] {
		return
	}
	d.warned[what] = true
	d.log.Warn("spice: display: "+what, args...)
}

// flush publishes what was drawn on the primary surface.
func (d *display) flush() {
	if d.primary == nil {
		return
	}
	if d.batch.Len() == 0 && !d.resized {
		return
	}
	if d.head.Empty() {
		d.fb.Publish(d.primary.c, &d.batch)
	} else {
		for _, r := range d.viewDirty {
			copyArea(d.view, d.primary.c, r, d.head.X, d.head.Y)
		}
		d.viewDirty = d.viewDirty[:0]
		d.fb.Publish(d.view, &d.batch)
	}
	d.resized = false
}

// copyArea copies the area r of dst from src at r moved by (ox, oy).
func copyArea(dst, src *framebuffer.Canvas, r framebuffer.Rect, ox, oy int) {
	r = r.Intersect(dst.Bounds()).Intersect(framebuffer.Rect{X: -ox, Y: -oy, W: src.W, H: src.H})
	for y := r.Y; y < r.Y+r.H; y++ {
		copy(dst.Row(r.X, y, r.W), src.Row(r.X+ox, y+oy, r.W))
	}
}

// setHead makes the area m of the primary surface the published screen
// (the whole surface when m covers it or is empty).
func (d *display) setHead(m framebuffer.Rect) error {
	if d.primary == nil {
		return nil
	}
	bounds := d.primary.c.Bounds()
	m = m.Intersect(bounds)
	if m == bounds || m.Empty() {
		m = framebuffer.Rect{}
	}
	if m == d.head {
		return nil
	}
	d.flush()
	d.head = m
	d.batch = framebuffer.Batch{}
	d.resized = true
	d.viewDirty = d.viewDirty[:0]
	if m.Empty() {
		d.view = nil
		d.batch.Damage(bounds)
		return nil
	}
	v, err := framebuffer.NewCanvas(m.W, m.H)
	if err != nil {
		return err
	}
	d.view = v
	d.batch.Damage(v.Bounds())
	d.viewDirty = append(d.viewDirty, v.Bounds())
	d.log.Debug("spice: showing part of the primary surface", "area", m)
	return nil
}

// handle processes one display channel message.
func (d *display) handle(m message) error {
	if err := d.handleMessage(m); err != nil {
		return fmt.Errorf("spice: display message %d: %w", m.typ, err)
	}
	return nil
}

func (d *display) handleMessage(m message) error {
	r := newReader(m.body)
	switch m.typ {
	case msgDisplayMark:
		d.marks++
		d.flush()
		if d.onMark != nil && d.primary != nil {
			d.onMark()
		}
		return nil
	case msgDisplayMode, msgDisplayReset:
		return nil
	case msgDisplaySurfaceCreate:
		return d.surfaceCreate(r)
	case msgDisplaySurfaceDestroy:
		id := r.u32()
		if r.err != nil {
			return r.err
		}
		if s := d.surfaces[id]; s != nil {
			d.flush()
			d.surfacePix -= s.c.W * s.c.H
			delete(d.surfaces, id)
			if s == d.primary {
				d.primary = nil
			}
		}
		return nil
	case msgDisplayMonitorsConfig:
		// The first monitor on the primary surface is the screen.
		count, maxAllowed := r.u16(), r.u16()
		var head framebuffer.Rect
		found := false
		for i := 0; i < int(count) && r.err == nil; i++ {
			mon, sid, w, h, x, y, flags := r.u32(), r.u32(), r.u32(), r.u32(), r.u32(), r.u32(), r.u32()
			d.log.Debug("spice: monitor", "id", mon, "surface", sid, "w", w, "h", h, "x", x, "y", y, "flags", flags, "max", maxAllowed)
			if !found && r.err == nil && d.primary != nil && sid == d.primaryID && w <= 1<<16 && h <= 1<<16 && x <= 1<<16 && y <= 1<<16 {
				head, found = framebuffer.Rect{X: int(x), Y: int(y), W: int(w), H: int(h)}, true
			}
		}
		if r.err != nil || !found {
			return r.err
		}
		return d.setHead(head)
	case msgDisplayInvalList:
		n := r.u16()
		for i := 0; i < int(n) && r.err == nil; i++ {
			r.u8()
			d.images.remove(r.u64())
		}
		return r.err
	case msgDisplayInvalAllPixmaps:
		if err := d.ch.waitForChannels(d.ch.ctx, r); err != nil {
			return err
		}
		d.images.clear()
		return nil
	case msgDisplayInvalPalette:
		id := r.u64()
		delete(d.palettes, id)
		return r.err
	case msgDisplayInvalAllPalettes:
		clear(d.palettes)
		return nil
	case msgDisplayDrawFill:
		return d.drawFill(m.body, r)
	case msgDisplayDrawCopy, msgDisplayDrawBlend, msgDisplayDrawOpaque:
		return d.drawCopy(m.typ, m.body, r)
	case msgDisplayDrawBlackness, msgDisplayDrawWhiteness, msgDisplayDrawInvers:
		return d.drawSolidRop(m.typ, r)
	case msgDisplayCopyBits:
		return d.copyBits(r)
	case msgDisplayDrawTransparent:
		return d.drawTransparent(m.body, r)
	case msgDisplayDrawAlphaBlend:
		return d.drawAlphaBlend(m.body, r)
	}
	if m.typ == msgDisplayStreamDestroyAll {
		return nil // there are no streams to destroy
	}
	if m.typ >= msgDisplayStreamCreate && m.typ < msgDisplayStreamDestroyAll || m.typ == msgDisplayStreamDataSized {
		d.warnOnce("video streams are not supported; start QEMU with streaming-video=off", "type", m.typ)
		return nil
	}
	d.warnOnce(fmt.Sprintf("unsupported message %d", m.typ))
	return nil
}

func (d *display) surfaceCreate(r *reader) error {
	id, w, h, format, flags := r.u32(), r.u32(), r.u32(), r.u32(), r.u32()
	if r.err != nil {
		return r.err
	}
	if err := framebuffer.CheckSize(int(w), int(h)); err != nil || w == 0 || h == 0 {
		return FormatError(fmt.Sprintf("surface %d of %dx%d", id, w, h))
	}
	if old := d.surfaces[id]; old != nil {
		d.surfacePix -= old.c.W * old.c.H
		if old == d.primary {
			d.primary = nil
		}
	}
	if len(d.surfaces) >= maxSurfaces || d.surfacePix+int(w*h) > maxSurfacePix {
		return FormatError(fmt.Sprintf("surface %d (%dx%d) exceeds the limit of %d surfaces or %d pixels", id, w, h, maxSurfaces, maxSurfacePix))
	}
	c, err := framebuffer.NewCanvas(int(w), int(h))
	if err != nil {
		return err
	}
	s := &surface{c: c, primary: flags&surfaceFlagPrimary != 0}
	d.surfaces[id] = s
	d.surfacePix += int(w * h)
	if s.primary {
		d.flush()
		d.primary, d.primaryID = s, id
		d.head, d.view, d.viewDirty = framebuffer.Rect{}, nil, nil
		d.resized = true
		d.batch = framebuffer.Batch{}
		d.log.Debug("spice: primary surface", "id", id, "w", w, "h", h, "format", format)
	}
	return nil
}

// base is a SpiceMsgDisplayBase: the target surface, the bounding box and
// the clip rectangles (nil: no clipping).
type base struct {
	surface *surface
	box     framebuffer.Rect
	clip    []framebuffer.Rect
}

func readRect(r *reader) framebuffer.Rect {
	top, left, bottom, right := r.i32(), r.i32(), r.i32(), r.i32()
	return framebuffer.Rect{X: int(left), Y: int(top), W: int(right) - int(left), H: int(bottom) - int(top)}
}

func (d *display) readBase(r *reader) (base, error) {
	var b base
	id := r.u32()
	b.box = readRect(r)
	if r.u8() == clipTypeRects {
		n := r.u32()
		if n > maxClipRects {
			return b, FormatError(fmt.Sprintf("%d clip rectangles", n))
		}
		b.clip = make([]framebuffer.Rect, 0, n)
		for i := uint32(0); i < n && r.err == nil; i++ {
			b.clip = append(b.clip, readRect(r))
		}
		if n == 0 {
			b.clip = []framebuffer.Rect{}
		}
	}
	if r.err != nil {
		return b, r.err
	}
	b.surface = d.surfaces[id]
	if b.surface == nil {
		return b, FormatError(fmt.Sprintf("draw on unknown surface %d", id))
	}
	return b, nil
}

// parts returns the areas of b's surface a drawing may touch: the box
// clipped to the surface and to each clip rectangle.
func (b base) parts() []framebuffer.Rect {
	box := b.box.Intersect(b.surface.c.Bounds())
	if box.Empty() {
		return nil
	}
	if b.clip == nil {
		return []framebuffer.Rect{box}
	}
	out := make([]framebuffer.Rect, 0, len(b.clip))
	for _, c := range b.clip {
		if p := box.Intersect(c); !p.Empty() {
			out = append(out, p)
		}
	}
	return out
}

// damage records a change of r on s.
func (d *display) damage(s *surface, r framebuffer.Rect) {
	if s != d.primary {
		return
	}
	if d.head.Empty() {
		d.batch.Damage(r)
		return
	}
	r = r.Intersect(d.head)
	r.X, r.Y = r.X-d.head.X, r.Y-d.head.Y
	if !r.Empty() {
		d.batch.Damage(r)
		d.viewDirty = append(d.viewDirty, r)
	}
}

// move records that src of the primary surface was copied to (dx, dy).
func (d *display) move(src framebuffer.Rect, dx, dy int) {
	if d.head.Empty() {
		d.batch.Move(src, dx, dy)
		return
	}
	dst := framebuffer.Rect{X: dx, Y: dy, W: src.W, H: src.H}
	if !src.In(d.head) || !dst.In(d.head) {
		d.damage(d.primary, dst)
		return
	}
	src.X, src.Y = src.X-d.head.X, src.Y-d.head.Y
	d.batch.Move(src, dx-d.head.X, dy-d.head.Y)
	d.viewDirty = append(d.viewDirty, framebuffer.Rect{X: dx - d.head.X, Y: dy - d.head.Y, W: src.W, H: src.H})
}

// skipMask reads a QMask and warns if it is one (masks are not supported).
func (d *display) skipMask(r *reader) {
	r.u8()
	r.i32()
	r.i32()
	if r.u32() != 0 {
		d.warnOnce("drawing masks are not supported")
	}
}

// rgbaOf converts a SPICE xRGB colour to the canvas's packed RGBA.
func rgbaOf(c uint32) uint32 {
	return (c>>16)&0xff | c&0xff00 | (c&0xff)<<16 | 0xff000000
}

func (d *display) drawFill(body []byte, r *reader) error {
	b, err := d.readBase(r)
	if err != nil {
		return err
	}
	btype := r.u8()
	var color uint32
	var pat *framebuffer.Canvas
	var patX, patY int
	switch btype {
	case brushSolid:
		color = r.u32()
	case brushPattern:
		off := r.u32()
		patX, patY = int(r.i32()), int(r.i32())
		if r.err == nil {
			if pat, err = d.image(body, off); err != nil {
				return err
			}
		}
	}
	rop := r.u16()
	d.skipMask(r)
	if r.err != nil {
		return r.err
	}
	for _, p := range b.parts() {
		switch {
		case rop&ropBlackness != 0:
			b.surface.c.Fill(p, 0xff000000)
		case rop&ropWhiteness != 0:
			b.surface.c.Fill(p, 0xffffffff)
		case rop&ropInvers != 0:
			invert(b.surface.c, p)
		case btype == brushSolid:
			b.surface.c.Fill(p, rgbaOf(color))
		case btype == brushPattern && pat != nil && pat.W > 0 && pat.H > 0:
			tile(b.surface.c, p, pat, patX, patY)
		default:
			continue
		}
		d.damage(b.surface, p)
	}
	return nil
}

func (d *display) drawSolidRop(typ uint16, r *reader) error {
	b, err := d.readBase(r)
	if err != nil {
		return err
	}
	d.skipMask(r)
	if r.err != nil {
		return r.err
	}
	for _, p := range b.parts() {
		switch typ {
		case msgDisplayDrawBlackness:
			b.surface.c.Fill(p, 0xff000000)
		case msgDisplayDrawWhiteness:
			b.surface.c.Fill(p, 0xffffffff)
		default:
			invert(b.surface.c, p)
		}
		d.damage(b.surface, p)
	}
	return nil
}

func (d *display) drawCopy(typ uint16, body []byte, r *reader) error {
	b, err := d.readBase(r)
	if err != nil {
		return err
	}
	off := r.u32()
	src := readRect(r)
	if typ == msgDisplayDrawOpaque {
		// The brush only matters for raster operations other than a plain copy.
		switch r.u8() {
		case brushSolid:
			r.u32()
		case brushPattern:
			r.u32()
			r.i32()
			r.i32()
		}
	}
	rop := r.u16()
	scale := r.u8()
	d.skipMask(r)
	if r.err != nil {
		return r.err
	}
	img, err := d.image(body, off)
	if err != nil || img == nil {
		return err
	}
	if rop&^(ropOpPut) != 0 && rop != 0 {
		d.warnOnce("raster operations other than copy are drawn as copy", "rop", rop)
	}
	if img == b.surface.c {
		img = img.Clone()
	}
	for _, p := range b.parts() {
		blit(b.surface.c, p, b.box, img, src, scale == scaleNearest, false)
		d.damage(b.surface, p)
	}
	return nil
}

func (d *display) drawTransparent(body []byte, r *reader) error {
	b, err := d.readBase(r)
	if err != nil {
		return err
	}
	off := r.u32()
	src := readRect(r)
	key := r.u32()
	r.u32()
	if r.err != nil {
		return r.err
	}
	img, err := d.image(body, off)
	if err != nil || img == nil {
		return err
	}
	for _, p := range b.parts() {
		transparent(b.surface.c, p, b.box, img, src, rgbaOf(key))
		d.damage(b.surface, p)
	}
	return nil
}

func (d *display) drawAlphaBlend(body []byte, r *reader) error {
	b, err := d.readBase(r)
	if err != nil {
		return err
	}
	flags := r.u8()
	alpha := r.u8()
	off := r.u32()
	src := readRect(r)
	if r.err != nil {
		return r.err
	}
	img, err := d.image(body, off)
	if err != nil || img == nil {
		return err
	}
	if img == b.surface.c {
		img = img.Clone()
	}
	for _, p := range b.parts() {
		alphaBlend(b.surface.c, p, b.box, img, src, alpha, flags&2 != 0)
		d.damage(b.surface, p)
	}
	return nil
}

func (d *display) copyBits(r *reader) error {
	b, err := d.readBase(r)
	if err != nil {
		return err
	}
	sx, sy := int(r.i32()), int(r.i32())
	if r.err != nil {
		return r.err
	}
	c := b.surface.c
	for _, p := range b.parts() {
		srcR := framebuffer.Rect{X: sx + p.X - b.box.X, Y: sy + p.Y - b.box.Y, W: p.W, H: p.H}
		if !c.Contains(srcR) {
			d.warnOnce("COPY_BITS source outside the surface")
			continue
		}
		c.Move(srcR, p.X, p.Y)
		if b.surface == d.primary {
			d.move(srcR, p.X, p.Y)
		}
	}
	return nil
}
