package rfb

import (
	"encoding/binary"
	"testing"

	"kvmgate/framebuffer"
)

func TestCopyRect(t *testing.T) {
	tests := []struct {
		name string
		src  framebuffer.Rect // W, H: the rectangle's size
		dst  framebuffer.Rect
	}{
		{"disjoint", framebuffer.Rect{X: 0, Y: 0}, framebuffer.Rect{X: 500, Y: 400, W: 300, H: 200}},
		{"scroll up", framebuffer.Rect{X: 0, Y: 20}, framebuffer.Rect{X: 0, Y: 0, W: 1021, H: 745}},
		{"scroll down", framebuffer.Rect{X: 0, Y: 0}, framebuffer.Rect{X: 0, Y: 20, W: 1021, H: 745}},
		{"right overlap", framebuffer.Rect{X: 10, Y: 10}, framebuffer.Rect{X: 13, Y: 10, W: 100, H: 100}},
		{"left overlap", framebuffer.Rect{X: 13, Y: 10}, framebuffer.Rect{X: 10, Y: 10, W: 100, H: 100}},
		{"corner", framebuffer.Rect{X: 0, Y: 0}, framebuffer.Rect{X: 1020, Y: 764, W: 1, H: 1}},
		{"same place", framebuffer.Rect{X: 7, Y: 9}, framebuffer.Rect{X: 7, Y: 9, W: 64, H: 65}},
	}
	base := testEncCanvas(t, 1021, 765)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base.Clone()
			var batch framebuffer.Batch
			payload := binary.BigEndian.AppendUint16(nil, uint16(tc.src.X))
			payload = binary.BigEndian.AppendUint16(payload, uint16(tc.src.Y))
			if err := testEncDecode(EncodingCopyRect, NativeFormat, c, &batch, payload, tc.dst); err != nil {
				t.Fatal(err)
			}
			want := base.Clone()
			for y := 0; y < tc.dst.H; y++ {
				copy(want.Row(tc.dst.X, tc.dst.Y+y, tc.dst.W), base.Row(tc.src.X, tc.src.Y+y, tc.dst.W))
			}
			testEncCompare(t, c, want)
			if batch.Len() != 1 {
				t.Fatalf("batch records %d changes, want 1 move", batch.Len())
			}
		})
	}
}

func TestCopyRectRecordsMove(t *testing.T) {
	c := testEncCanvas(t, 64, 64)
	var batch framebuffer.Batch
	r := framebuffer.Rect{X: 10, Y: 20, W: 30, H: 40}
	if err := testEncDecode(EncodingCopyRect, NativeFormat, c, &batch, []byte{0, 1, 0, 2}, r); err != nil {
		t.Fatal(err)
	}
	fb := framebuffer.New()
	v := fb.Subscribe()
	fb.Publish(c, &framebuffer.Batch{})
	dst := &framebuffer.Canvas{}
	v.Take(dst)
	fb.Publish(c, &batch)
	u := v.Take(dst)
	want := framebuffer.Move{Src: framebuffer.Rect{X: 1, Y: 2, W: 30, H: 40}, DstX: 10, DstY: 20}
	if len(u.Moves) != 1 || u.Moves[0] != want {
		t.Fatalf("moves = %v, want [%v]", u.Moves, want)
	}
}

func TestCopyRectBad(t *testing.T) {
	r := framebuffer.Rect{X: 0, Y: 0, W: 10, H: 10}
	tests := []testEncBad{
		{"source right of canvas", []byte{0, 4, 0, 0}, "outside"},
		{"source below canvas", []byte{0, 0, 0, 4}, "outside"},
		{"source far away", []byte{0xff, 0xff, 0xff, 0xff}, "outside"},
		{"truncated", []byte{0, 1, 0}, "copyrect source"},
		{"empty", nil, "copyrect source"},
	}
	testEncBadCases(t, EncodingCopyRect, r, tests)
}

func FuzzCopyRect(f *testing.F) {
	for _, s := range testFuzzSeeds(EncodingCopyRect) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { testFuzzDecode(t, EncodingCopyRect, data) })
}
