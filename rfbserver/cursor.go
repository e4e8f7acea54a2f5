package rfbserver

import "kvmgate/framebuffer"

// maxCursorSize bounds the cursor shapes forwarded to clients.
const maxCursorSize = 256

// appendCursor appends the Cursor pseudo-encoding payload for cur: its
// pixels in the client's format, then a 1-bit mask (alpha ≥ 128 is shown).
// A nil cursor has no payload (a 0×0 cursor hides the pointer).
func appendCursor(dst []byte, cur *framebuffer.Cursor, pw *pixelWriter) []byte {
	if cur == nil {
		return dst
	}
	for i := 0; i < cur.W*cur.H; i++ {
		p := cur.Pix[4*i : 4*i+4]
		dst = pw.appendPixel(dst, pw.value(p))
	}
	stride := (cur.W + 7) / 8
	for y := 0; y < cur.H; y++ {
		row := make([]byte, stride)
		for x := 0; x < cur.W; x++ {
			if cur.Pix[4*(y*cur.W+x)+3] >= 128 {
				row[x/8] |= 0x80 >> (x % 8)
			}
		}
		dst = append(dst, row...)
	}
	return dst
}

// cursorUsable reports whether cur is a shape the server can forward.
func cursorUsable(cur *framebuffer.Cursor) bool {
	return cur != nil && cur.W > 0 && cur.H > 0 && cur.W <= maxCursorSize && cur.H <= maxCursorSize &&
		len(cur.Pix) >= 4*cur.W*cur.H && cur.HotX >= 0 && cur.HotY >= 0 && cur.HotX < cur.W && cur.HotY < cur.H
}
