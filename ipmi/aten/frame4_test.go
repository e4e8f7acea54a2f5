package aten

import (
	"crypto/sha256"
	"encoding/hex"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kvmgate/framebuffer"
)

// sharedAST2100 is where the shared AST2100 reference data lives, relative
// to this package: the checkout's ../shared (CI clones shared/ beside it).
var sharedAST2100 = filepath.Join("..", "..", "..", "shared", "data", "ast2100")

// loadFrame4 reads the captured 1024×768 frame (header 05 05 01a6: selectors
// 5/5, 4:2:0), failing the test clearly when the shared data is missing.
func loadFrame4(tb testing.TB) []byte {
	tb.Helper()
	hx, err := os.ReadFile(filepath.Join(sharedAST2100, "frame4.hex"))
	if err != nil {
		tb.Fatalf("AST2100 sample frame missing: the tests read the shared data at %s (../shared beside the checkout): %v", sharedAST2100, err)
	}
	frame, err := hex.DecodeString(strings.TrimSpace(string(hx)))
	if err != nil {
		tb.Fatalf("frame4.hex: %v", err)
	}
	return frame
}

// loadFrame4Reference reads the reference decoder's picture of frame4.
func loadFrame4Reference(tb testing.TB) *image.RGBA {
	tb.Helper()
	f, err := os.Open(filepath.Join(sharedAST2100, "frame4-reference-1024x768.png"))
	if err != nil {
		tb.Fatalf("AST2100 reference picture missing: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		tb.Fatalf("frame4-reference-1024x768.png: %v", err)
	}
	b := img.Bounds()
	ref := image.NewRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			ref.Set(x, y, img.At(x, y)) // test-only conversion, not a hot path
		}
	}
	return ref
}

// compareRef returns the largest and mean absolute channel difference
// between c and ref and the number of pixels that differ.
func compareRef(c *framebuffer.Canvas, ref *image.RGBA) (maxd int, mean float64, npix int) {
	sum := 0
	for y := 0; y < c.H; y++ {
		for x := 0; x < c.W; x++ {
			p := c.Pix[y*c.Stride+x*4:]
			q := ref.Pix[y*ref.Stride+x*4:]
			diff := false
			for k := 0; k < 3; k++ {
				d := int(p[k]) - int(q[k])
				if d < 0 {
					d = -d
				}
				sum += d
				maxd = max(maxd, d)
				diff = diff || d != 0
			}
			if diff {
				npix++
			}
		}
	}
	return maxd, float64(sum) / float64(3*c.W*c.H), npix
}

// TestAST2100Frame4Reference checks the bitstream rules against ASPEED's
// reference decoder. The reference picture was made by handing that decoder
// the capture from its first byte, so it read the 4-byte ATEN header word as
// the first 32 stream bits: the header (a6010505 as a little-endian word)
// then parses as a pass-2 jump to MCU 96,16, which 4:2:0 ignores, and the
// Huffman decoding falls into step a few blocks later with DC predictors
// offset (the grey background) and the block position two MCUs on (the
// text that wraps at the right edge). Feeding this decoder the same 32 bits
// as stream must give the reference picture pixel for pixel.
func TestAST2100Frame4Reference(t *testing.T) {
	frame, ref := loadFrame4(t), loadFrame4Reference(t)
	if ref.Rect.Dx() != 1024 || ref.Rect.Dy() != 768 {
		t.Fatalf("reference picture is %v, want 1024x768", ref.Rect)
	}
	asReference := append(append([]byte{}, frame[:4]...), frame...)
	c, _ := framebuffer.NewCanvas(1024, 768)
	var d AST2100Decoder
	if err := d.Decode(c, asReference, nil); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	maxd, mean, n := compareRef(c, ref)
	if maxd != 0 {
		t.Fatalf("decode differs from the reference picture: %d pixels, max abs error %d, mean %.4f", n, maxd, mean)
	}
}

// frame4SHA256 is the SHA-256 of the RGBA pixels of frame4 decoded as ATEN
// sends it (header, then stream): a black Linux text console, "clio login:"
// and "Ubuntu 15.10 clio tty1" lines from the left edge, then rows of
// "^Fdata^R" and the cursor at the bottom. Recorded from this decoder after
// TestAST2100Frame4Reference had shown its bitstream rules to be the
// reference's; it guards against regressions.
const frame4SHA256 = "2953912419435daed61e6091e576346f2a7a482d8e953f6dc6558efd5237cd63"

func TestAST2100Frame4(t *testing.T) {
	frame := loadFrame4(t)
	c, _ := framebuffer.NewCanvas(1024, 768)
	var d AST2100Decoder
	var b framebuffer.Batch
	if err := d.Decode(c, frame, &b); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	// Every MCU is coded: the damage is the whole screen, merged into one
	// rectangle.
	if b.Len() != 1 {
		t.Errorf("damage: %d rectangles, want 1", b.Len())
	}
	// A text console: mostly black, the first text line starting at the
	// left edge (the "c" of "clio login:" in the first 8 columns of rows
	// 16..31), nothing lit in the right half of the top text row.
	black, lit := 0, 0
	for y := 0; y < c.H; y++ {
		for x := 0; x < c.W; x++ {
			p := c.Pix[y*c.Stride+x*4:]
			if p[0] == 0 && p[1] == 0 && p[2] == 0 {
				black++
			}
		}
	}
	if black < c.W*c.H*9/10 {
		t.Errorf("only %d of %d pixels black; want a black console background", black, c.W*c.H)
	}
	for y := 16; y < 32; y++ {
		for x := 0; x < 8; x++ {
			if c.Pix[y*c.Stride+x*4] > 128 {
				lit++
			}
		}
	}
	if lit == 0 {
		t.Errorf("no text at the left edge of the first console line")
	}
	sum := sha256.Sum256(c.Pix)
	if got := hex.EncodeToString(sum[:]); got != frame4SHA256 {
		t.Errorf("pixels' SHA-256 = %s, want %s", got, frame4SHA256)
	}
}
