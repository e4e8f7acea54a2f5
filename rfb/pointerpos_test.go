package rfb

import (
	"slices"
	"testing"

	"kvmgate/framebuffer"
)

// TestPointerPos checks that the client asks for PointerPos and hands the
// positions a server reports to the framebuffer, latest first.
func TestPointerPos(t *testing.T) {
	lf := startLive(t, NewOptions(), 64, 48, NativeFormat)
	if !slices.Contains(lf.c.encodingList(), EncodingPointerPos) {
		t.Fatalf("SetEncodings lacks PointerPos: %v", lf.c.encodingList())
	}
	v := lf.fb.Subscribe()
	defer v.Close()
	var dst framebuffer.Canvas
	if u := v.Take(&dst); u.CursorMoved {
		t.Fatalf("a position before the server sent one: %+v", u)
	}
	lf.s.write(updateHdr(2), rectHdr(10, 20, 0, 0, EncodingPointerPos), rectHdr(33, 44, 0, 0, EncodingPointerPos))
	lf.sync()
	u := v.Take(&dst)
	if !u.CursorMoved || u.CursorX != 33 || u.CursorY != 44 {
		t.Fatalf("after two PointerPos rectangles: moved %v at %d,%d, want 33,44", u.CursorMoved, u.CursorX, u.CursorY)
	}
	// Pixel rectangles after a PointerPos still decode: it has no payload.
	lf.s.write(updateHdr(2), rectHdr(1, 2, 0, 0, EncodingPointerPos), rectHdr(0, 0, 1, 1, EncodingRaw), make([]byte, 4))
	lf.sync()
	if x, y, ok := lf.fb.CursorPos(); !ok || x != 1 || y != 2 {
		t.Fatalf("CursorPos %d,%d,%v, want 1,2", x, y, ok)
	}
}
