package testserver

import (
	"strings"
	"testing"
)

func TestParsePPM(t *testing.T) {
	tests := []struct {
		name string
		data string
		w, h int
		want []uint32 // pixels in row order, R in the low byte, alpha added
	}{
		{"qemu style", "P6\n2 1\n255\n\xff\x00\x00\x01\x02\x03", 2, 1, []uint32{0x0000ff, 0x030201}},
		{"comments and spaces", "P6 # made by hand\n 1\t2 # size\n255 \x10\x20\x30\x40\x50\x60", 1, 2, []uint32{0x302010, 0x605040}},
		{"maxval 15", "P6\n1 1\n15\n\x0f\x00\x05", 1, 1, []uint32{0x5500ff}},
		{"16-bit samples", "P6\n1 1\n65535\n\xff\xff\x80\x00\x00\x00", 1, 1, []uint32{0x0080ff}},
		{"trailing bytes ignored", "P6\n1 1\n255\n\x01\x02\x03junk", 1, 1, []uint32{0x030201}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParsePPM([]byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if c.W != tt.w || c.H != tt.h {
				t.Fatalf("size %dx%d, want %dx%d", c.W, c.H, tt.w, tt.h)
			}
			for i, want := range tt.want {
				if got := c.At(i%tt.w, i/tt.w); got != want|0xff000000 {
					t.Errorf("pixel %d = %#08x, want %#08x", i, got, want|0xff000000)
				}
			}
		})
	}
}

func TestParsePPMErrors(t *testing.T) {
	tests := []struct{ name, data, want string }{
		{"empty", "", "not a binary PPM"},
		{"ascii ppm", "P3\n1 1\n255\n1 2 3\n", "not a binary PPM"},
		{"missing height", "P6\n1 \n", "header field 1 missing"},
		{"no separator", "P6\n1 1\n255", "no whitespace after the header"},
		{"maxval zero", "P6\n1 1\n0\n\x00\x00\x00", "maxval 0"},
		{"maxval huge", "P6\n1 1\n70000\n\x00\x00\x00", "maxval 70000"},
		{"truncated", "P6\n2 2\n255\n\x00\x00\x00", "needs 12 bytes"},
		{"too large", "P6\n20000 20000\n255\n", "out of range"},
		{"number overflow", "P6\n99999999999999999999 1\n255\n", "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePPM([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func FuzzParsePPM(f *testing.F) {
	f.Add([]byte("P6\n2 1\n255\n\xff\x00\x00\x01\x02\x03"))
	f.Add([]byte("P6 #c\n1 1 65535 \x00\x01\x02\x03\x04\x05"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParsePPM(data)
		if err != nil {
			return
		}
		if len(c.Pix) != c.Stride*c.H {
			t.Fatalf("inconsistent canvas %dx%d stride %d len %d", c.W, c.H, c.Stride, len(c.Pix))
		}
	})
}
