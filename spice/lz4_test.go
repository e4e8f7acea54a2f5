package spice

import (
	"encoding/binary"
	"strings"
	"testing"
)

// lz4Image builds a SPICE LZ4 image stream from raw LZ4 blocks.
func lz4Image(topDown bool, format BitmapFormat, blocks ...[]byte) []byte {
	b := []byte{0, byte(format)}
	if topDown {
		b[0] = 1
	}
	for _, blk := range blocks {
		b = binary.BigEndian.AppendUint32(b, uint32(len(blk)))
		b = append(b, blk...)
	}
	return b
}

func TestDecodeLZ4HandMade(t *testing.T) {
	for _, tc := range []struct {
		name string
		w, h int
		data []byte
		want []uint32 // pixels as Canvas.At returns them, top row first
	}{
		{
			// One block of literals only: two b,g,r,x pixels.
			name: "rgb32 literals",
			w:    2, h: 1,
			data: lz4Image(true, Bitmap32Bit, []byte{0x80, 0x30, 0x20, 0x10, 0, 3, 2, 1, 0}),
			want: []uint32{0xff302010, 0xff030201},
		},
		{
			// The second block is a 12-byte match reaching back into the
			// first block (linked blocks), overlapping itself, then an
			// empty literal run ending the block.
			name: "linked blocks",
			w:    4, h: 1,
			data: lz4Image(true, Bitmap32Bit,
				[]byte{0x40, 0xff, 0x00, 0x00, 0},
				[]byte{0x08, 4, 0, 0x00}),
			want: []uint32{0xffff0000, 0xffff0000, 0xffff0000, 0xffff0000},
		},
		{
			// 40 pixels: one literal pixel, then a match of 156 bytes
			// (15 + 137 + 4) at offset 4.
			name: "long match",
			w:    40, h: 1,
			data: lz4Image(true, Bitmap32Bit, []byte{0x4f, 1, 2, 3, 0, 4, 0, 137, 0x00}),
			want: repeat(0xff010203, 40),
		},
		{
			// 17 literal bytes need one extra length byte (15 + 2); the
			// bottom row comes first in a bottom-up image.
			name: "bottom-up rgb24 long literals",
			w:    3, h: 2,
			data: lz4Image(false, Bitmap24Bit, append([]byte{0xf0, 3}, []byte{
				0, 0, 1, 0, 0, 2, 0, 0, 3, // bottom row
				1, 0, 0, 2, 0, 0, 3, 0, 0, // top row
			}...)),
			want: []uint32{0xff010000, 0xff020000, 0xff030000, 0xff000001, 0xff000002, 0xff000003},
		},
		{
			name: "bottom-up rgb32",
			w:    1, h: 2,
			data: lz4Image(false, Bitmap32Bit, []byte{0x80, 1, 0, 0, 0, 2, 0, 0, 0}),
			want: []uint32{0xff020000, 0xff010000},
		},
		{
			name: "rgb16",
			w:    2, h: 1,
			data: lz4Image(true, Bitmap16Bit, []byte{0x40, 0x00, 0x7c, 0x1f, 0x00}),
			want: []uint32{0xff0000ff, 0xffff0000},
		},
		{
			name: "rgba",
			w:    1, h: 1,
			data: lz4Image(true, BitmapRGBA, []byte{0x40, 1, 2, 3, 0x80}),
			want: []uint32{0x80010203},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeLZ4(tc.data, tc.w, tc.h)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint32
			for y := 0; y < c.H; y++ {
				for x := 0; x < c.W; x++ {
					got = append(got, c.At(x, y))
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d pixels, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("pixel %d = %#08x, want %#08x", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func repeat(v uint32, n int) []uint32 {
	s := make([]uint32, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func TestDecodeLZ4Errors(t *testing.T) {
	for _, tc := range []struct {
		name string
		w, h int
		data []byte
		want string
	}{
		{"empty", 1, 1, nil, "of 0 bytes"},
		{"palette format", 1, 1, lz4Image(true, Bitmap8Bit, []byte{0x10, 0}), "bitmap format 5"},
		{"zero offset", 2, 1, lz4Image(true, Bitmap32Bit, []byte{0x40, 1, 2, 3, 4, 0, 0, 0}), "offset 0"},
		{"offset before start", 2, 1, lz4Image(true, Bitmap32Bit, []byte{0x40, 1, 2, 3, 4, 5, 0, 0}), "offset 5"},
		{"match past the end", 2, 1, lz4Image(true, Bitmap32Bit, []byte{0x48, 1, 2, 3, 4, 4, 0, 0}), "past the image end"},
		{"literals past the end", 1, 1, lz4Image(true, Bitmap32Bit, []byte{0x50, 1, 2, 3, 4, 5}), "past the image end"},
		{"literals past the block", 1, 1, lz4Image(true, Bitmap32Bit, []byte{0x40, 1, 2}), "bytes left"},
		{"short image", 2, 1, lz4Image(true, Bitmap32Bit, []byte{0x40, 1, 2, 3, 4}), "want 8"},
		{"block length past the data", 1, 1, []byte{1, 8, 0, 0, 0, 9, 0x40}, "of 9 bytes"},
		{"truncated block length", 1, 1, []byte{1, 8, 0, 0}, "truncated length"},
		{"block ends after a match", 2, 1, lz4Image(true, Bitmap32Bit, []byte{0x40, 1, 2, 3, 4, 4, 0}), "before its last sequence"},
		{"huge claim", 4000, 4000, lz4Image(true, Bitmap32Bit, []byte{0x0f, 4, 0, 255, 255}), "in 11 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeLZ4(tc.data, tc.w, tc.h)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func FuzzDecodeLZ4(f *testing.F) {
	f.Add(lz4Image(true, Bitmap32Bit, []byte{0x40, 0xff, 0x00, 0x00, 0}, []byte{0x08, 4, 0, 0x00}), uint8(4), uint8(1))
	f.Add(lz4Image(false, Bitmap24Bit, []byte{0x4f, 1, 2, 3, 0, 3, 0, 137, 0x00}), uint8(40), uint8(1))
	f.Add(readTestdata(f, "seabios-lz4.bin")[:600], uint8(255), uint8(2))
	f.Fuzz(func(t *testing.T, b []byte, w, h uint8) {
		if c, err := DecodeLZ4(b, int(w), int(h)); err == nil && len(c.Pix) != c.W*c.H*4 {
			t.Fatal("bad canvas")
		}
	})
}
