package testserver

import (
	"fmt"

	"kvmgate/framebuffer"
)

// ParsePPM decodes a binary PPM image (P6, as QEMU's screendump writes it)
// into an opaque RGBA canvas. Samples of two bytes (maxval above 255) are
// reduced to 8 bits.
func ParsePPM(data []byte) (*framebuffer.Canvas, error) {
	if len(data) < 2 || data[0] != 'P' || data[1] != '6' {
		return nil, fmt.Errorf("ppm: not a binary PPM (P6) file")
	}
	pos := 2
	var fields [3]int
	for i := range fields {
		pos = skipPPMSpace(data, pos)
		start := pos
		n := 0
		for pos < len(data) && data[pos] >= '0' && data[pos] <= '9' {
			n = n*10 + int(data[pos]-'0')
			pos++
			if n > 1<<20 {
				return nil, fmt.Errorf("ppm: header number too large at byte %d", start)
			}
		}
		if pos == start {
			return nil, fmt.Errorf("ppm: header field %d missing at byte %d", i, start)
		}
		fields[i] = n
	}
	// Exactly one whitespace byte ends the header.
	if pos >= len(data) || !(data[pos] == ' ' || data[pos] == '\t' || data[pos] == '\n' || data[pos] == '\r') {
		return nil, fmt.Errorf("ppm: no whitespace after the header at byte %d", pos)
	}
	pos++
	w, h, maxval := fields[0], fields[1], fields[2]
	if maxval < 1 || maxval > 65535 {
		return nil, fmt.Errorf("ppm: maxval %d out of range", maxval)
	}
	if err := framebuffer.CheckSize(w, h); err != nil {
		return nil, fmt.Errorf("ppm: %w", err)
	}
	sample := 1
	if maxval > 255 {
		sample = 2
	}
	rowBytes := 3 * sample * w
	if rowBytes*h > len(data)-pos {
		return nil, fmt.Errorf("ppm: %dx%d image needs %d bytes of pixels, file has %d", w, h, rowBytes*h, len(data)-pos)
	}
	c, err := framebuffer.NewCanvas(w, h)
	if err != nil {
		return nil, fmt.Errorf("ppm: %w", err)
	}
	pix := data[pos:]
	for y := 0; y < h; y++ {
		src, dst := pix[y*rowBytes:(y+1)*rowBytes], c.Row(0, y, w)
		switch {
		case maxval == 255:
			for i, j := 0, 0; i < len(src); i, j = i+3, j+4 {
				dst[j], dst[j+1], dst[j+2] = src[i], src[i+1], src[i+2]
			}
		case sample == 1:
			for i, j := 0, 0; i < len(src); i, j = i+3, j+4 {
				for k := 0; k < 3; k++ {
					dst[j+k] = byte((min(int(src[i+k]), maxval)*255 + maxval/2) / maxval)
				}
			}
		default:
			for i, j := 0, 0; i < len(src); i, j = i+6, j+4 {
				for k := 0; k < 3; k++ {
					v := min(int(src[i+2*k])<<8|int(src[i+2*k+1]), maxval)
					dst[j+k] = byte((v*255 + maxval/2) / maxval)
				}
			}
		}
	}
	return c, nil
}

// skipPPMSpace returns the position of the first byte at or after pos that is
// neither whitespace nor part of a comment.
func skipPPMSpace(data []byte, pos int) int {
	for pos < len(data) {
		switch data[pos] {
		case ' ', '\t', '\n', '\r', '\v', '\f':
			pos++
		case '#':
			for pos < len(data) && data[pos] != '\n' && data[pos] != '\r' {
				pos++
			}
		default:
			return pos
		}
	}
	return pos
}
