package spice

import (
	"fmt"
	"log/slog"

	"kvmgate/framebuffer"
)

// Cursor channel messages.
const (
	msgCursorInit     = 101
	msgCursorReset    = 102
	msgCursorSet      = 103
	msgCursorMove     = 104
	msgCursorHide     = 105
	msgCursorTrail    = 106
	msgCursorInvalOne = 107
	msgCursorInvalAll = 108

	cursorFlagNone      = 1
	cursorFlagCacheMe   = 2
	cursorFlagFromCache = 4

	cursorAlpha   = 0
	cursorMono    = 1
	cursorColor32 = 6

	maxCursorSize    = 512
	maxCachedCursors = 512
)

// cursor follows the cursor channel and hands shapes to the framebuffer;
// it is owned by the channel's reader goroutine.
type cursor struct {
	fb     *framebuffer.Framebuffer
	log    *slog.Logger
	cache  map[uint64]*framebuffer.Cursor
	shape  *framebuffer.Cursor
	hidden bool // by CURSOR_HIDE or an invisible CURSOR_SET, until a move
	warned map[uint8]bool
}

func newCursor(fb *framebuffer.Framebuffer, log *slog.Logger) *cursor {
	return &cursor{fb: fb, log: log, cache: map[uint64]*framebuffer.Cursor{}, warned: map[uint8]bool{}}
}

func (c *cursor) handle(m message) error {
	if err := c.handleMessage(m); err != nil {
		return fmt.Errorf("spice: cursor message %d: %w", m.typ, err)
	}
	return nil
}

func (c *cursor) handleMessage(m message) error {
	r := newReader(m.body)
	switch m.typ {
	case msgCursorInit, msgCursorSet:
		x, y := r.i16(), r.i16()
		if m.typ == msgCursorInit {
			r.u16()
			r.u16()
		}
		visible := r.u8() != 0
		shape, err := c.readCursor(r)
		if err != nil {
			return err
		}
		c.log.Debug("spice: cursor", "msg", m.typ, "visible", visible, "shape", shape != nil)
		if shape != nil {
			c.shape = shape
		}
		c.fb.SetCursorPos(int(x), int(y))
		c.hidden = !visible
		if visible && c.shape != nil {
			c.fb.SetCursor(c.shape)
		} else {
			c.fb.SetCursor(nil)
		}
	case msgCursorHide:
		c.log.Debug("spice: cursor hidden")
		c.hidden = true
		c.fb.SetCursor(nil)
	case msgCursorReset:
		clear(c.cache)
		c.shape = nil
		c.hidden = false
		c.fb.SetCursor(nil)
	case msgCursorInvalOne:
		delete(c.cache, r.u64())
		return r.err
	case msgCursorInvalAll:
		clear(c.cache)
	case msgCursorMove:
		// The server sends moves in server mouse mode, where the browser
		// draws the cursor at this position; a move shows a hidden cursor
		// again, as it does in the server.
		x, y := r.i16(), r.i16()
		if r.err != nil {
			return r.err
		}
		c.fb.SetCursorPos(int(x), int(y))
		if c.hidden && c.shape != nil {
			c.hidden = false
			c.fb.SetCursor(c.shape)
		}
	case msgCursorTrail:
		// Trails are a client-side effect of the old days; ignored.
	}
	return nil
}

// readCursor reads a SpiceCursor; nil without error means "no shape".
func (c *cursor) readCursor(r *reader) (*framebuffer.Cursor, error) {
	flags := r.u16()
	if r.err != nil {
		return nil, r.err
	}
	if flags&cursorFlagNone != 0 {
		return nil, nil
	}
	unique := r.u64()
	typ := r.u8()
	w, h := int(r.u16()), int(r.u16())
	hx, hy := int(r.u16()), int(r.u16())
	if r.err != nil {
		return nil, r.err
	}
	if flags&cursorFlagFromCache != 0 {
		cur := c.cache[unique]
		if cur == nil {
			return nil, FormatError(fmt.Sprintf("cursor %#x is not in the cache", unique))
		}
		return cur, nil
	}
	if w <= 0 || h <= 0 || w > maxCursorSize || h > maxCursorSize {
		return nil, FormatError(fmt.Sprintf("cursor of %dx%d", w, h))
	}
	data := r.rest()
	cur, err := DecodeCursor(typ, w, h, data)
	if err != nil {
		if _, ok := err.(UnsupportedError); ok {
			if !c.warned[typ] {
				c.warned[typ] = true
				c.log.Warn("spice: cursor", "err", err)
			}
			return nil, nil
		}
		return nil, err
	}
	cur.HotX, cur.HotY = min(hx, w-1), min(hy, h-1)
	if flags&cursorFlagCacheMe != 0 {
		if len(c.cache) >= maxCachedCursors {
			clear(c.cache)
		}
		c.cache[unique] = cur
	}
	return cur, nil
}

// DecodeCursor converts SPICE cursor pixel data of the given type to a
// framebuffer cursor with straight alpha. Alpha cursors are B, G, R, A
// bytes; mono cursors are an AND mask followed by an XOR mask, one bit per
// pixel, most significant bit first.
func DecodeCursor(typ uint8, w, h int, data []byte) (*framebuffer.Cursor, error) {
	cur := &framebuffer.Cursor{W: w, H: h, Pix: make([]byte, 4*w*h)}
	stride := (w + 7) / 8
	switch typ {
	case cursorAlpha:
		if len(data) < 4*w*h {
			return nil, FormatError(fmt.Sprintf("alpha cursor %dx%d in %d bytes", w, h, len(data)))
		}
		for i := 0; i < w*h; i++ {
			s, d := data[4*i:4*i+4], cur.Pix[4*i:4*i+4]
			d[0], d[1], d[2], d[3] = s[2], s[1], s[0], s[3]
		}
	case cursorMono:
		if len(data) < 2*stride*h {
			return nil, FormatError(fmt.Sprintf("mono cursor %dx%d in %d bytes", w, h, len(data)))
		}
		and, xor := data[:stride*h], data[stride*h:2*stride*h]
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				bit := byte(0x80) >> uint(x&7)
				a, xo := and[y*stride+x/8]&bit != 0, xor[y*stride+x/8]&bit != 0
				d := cur.Pix[4*(y*w+x) : 4*(y*w+x)+4]
				switch {
				case !a && !xo:
					d[0], d[1], d[2], d[3] = 0, 0, 0, 0xff
				case !a && xo:
					d[0], d[1], d[2], d[3] = 0xff, 0xff, 0xff, 0xff
				case a && xo:
					// Inverting pixels cannot be expressed; draw them black.
					d[0], d[1], d[2], d[3] = 0, 0, 0, 0xff
				}
			}
		}
	case cursorColor32:
		if len(data) < 4*w*h+stride*h {
			return nil, FormatError(fmt.Sprintf("colour cursor %dx%d in %d bytes", w, h, len(data)))
		}
		and := data[4*w*h:]
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				i := y*w + x
				if and[y*stride+x/8]&(0x80>>uint(x&7)) != 0 {
					continue
				}
				s, d := data[4*i:4*i+4], cur.Pix[4*i:4*i+4]
				d[0], d[1], d[2], d[3] = s[2], s[1], s[0], 0xff
			}
		}
	default:
		return nil, UnsupportedError(fmt.Sprintf("cursor type %d", typ))
	}
	return cur, nil
}
