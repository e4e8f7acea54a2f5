package spice

import (
	"encoding/binary"
	"io"
	"log/slog"
	"testing"

	"kvmgate/framebuffer"
)

// cursorSetBody is a CURSOR_SET message: position, visibility and a 2×2
// alpha cursor with hotspot 1,1 (or no shape).
func cursorSetBody(x, y int16, visible, shape bool) []byte {
	le := binary.LittleEndian
	b := le.AppendUint16(nil, uint16(x))
	b = le.AppendUint16(b, uint16(y))
	if visible {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	if !shape {
		return le.AppendUint16(b, cursorFlagNone)
	}
	b = le.AppendUint16(b, 0)
	b = le.AppendUint64(b, 7)
	b = append(b, cursorAlpha)
	for _, v := range []uint16{2, 2, 1, 1} {
		b = le.AppendUint16(b, v)
	}
	return append(b, make([]byte, 16)...)
}

func cursorMoveBody(x, y int16) []byte {
	return binary.LittleEndian.AppendUint16(binary.LittleEndian.AppendUint16(nil, uint16(x)), uint16(y))
}

// TestCursorPositionAndVisibility feeds the cursor channel's messages in
// turn and checks the shape (nil: hidden) and position viewers see.
func TestCursorPositionAndVisibility(t *testing.T) {
	fb := framebuffer.New()
	v := fb.Subscribe()
	defer v.Close()
	var dst framebuffer.Canvas
	c := newCursor(fb, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var shown bool
	x, y := -1, -1
	steps := []struct {
		name         string
		msg          message
		shown        bool
		wantX, wantY int
	}{
		{"set", message{msgCursorSet, cursorSetBody(10, 20, true, true)}, true, 10, 20},
		{"move", message{msgCursorMove, cursorMoveBody(30, 40)}, true, 30, 40},
		{"hide", message{msgCursorHide, nil}, false, 30, 40},
		{"move shows", message{msgCursorMove, cursorMoveBody(31, 41)}, true, 31, 41},
		{"invisible set", message{msgCursorSet, cursorSetBody(5, 6, false, false)}, false, 5, 6},
		{"move shows the kept shape", message{msgCursorMove, cursorMoveBody(-3, 7)}, true, -3, 7},
		{"reset", message{msgCursorReset, nil}, false, -3, 7},
		{"move without a shape", message{msgCursorMove, cursorMoveBody(8, 9)}, false, 8, 9},
	}
	for _, s := range steps {
		if err := c.handle(s.msg); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		u := v.Take(&dst)
		if u.CursorChanged {
			shown = u.Cursor != nil
			if shown && (u.Cursor.W != 2 || u.Cursor.HotX != 1) {
				t.Fatalf("%s: shape %+v", s.name, u.Cursor)
			}
		}
		if u.CursorMoved {
			x, y = u.CursorX, u.CursorY
		}
		if shown != s.shown || x != s.wantX || y != s.wantY {
			t.Fatalf("%s: shown %v at %d,%d; want %v at %d,%d", s.name, shown, x, y, s.shown, s.wantX, s.wantY)
		}
	}
	if err := c.handle(message{msgCursorMove, []byte{1}}); err == nil {
		t.Fatal("a truncated CURSOR_MOVE was accepted")
	}
}
