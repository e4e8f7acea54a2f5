package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"kvmgate/internal/testserver"
)

// photoW and photoH are the size of the photo-like frames.
const photoW, photoH = 256, 192

// writeXWD writes a w×h 24-bit TrueColor ZPixmap X Window Dump (version 7,
// header most significant byte first, pixels B, G, R, pad) that xwud shows.
// pix holds R, G, B bytes per pixel.
func writeXWD(path string, w, h int, pix []byte) error {
	name := []byte("kvmgate\x00")
	fields := []uint32{
		uint32(100 + len(name)), 7, 2, 24, uint32(w), uint32(h), 0,
		0, 32, 0, 32, 32, uint32(w * 4), 4, // LSBFirst, unit, bit order, pad, bpp, bpl, TrueColor
		0xff0000, 0xff00, 0xff, 8, 256, 0, // masks, bits per rgb, colormap entries, ncolors
		uint32(w), uint32(h), 0, 0, 0,
	}
	buf := make([]byte, 0, 100+len(name)+w*h*4)
	for _, f := range fields {
		buf = binary.BigEndian.AppendUint32(buf, f)
	}
	buf = append(buf, name...)
	for i := 0; i < w*h; i++ {
		buf = append(buf, pix[3*i+2], pix[3*i+1], pix[3*i], 0)
	}
	return os.WriteFile(path, buf, 0o644)
}

// photoFrame renders frame i of a photo-like animation: smooth colour fields
// drifting with i, a moving bright disc and sensor-like noise, so that
// almost every 64×64 tile has hundreds of colours and few repeats.
func photoFrame(i int) []byte {
	rng := rand.New(rand.NewPCG(uint64(i), 42))
	pix := make([]byte, photoW*photoH*3)
	ph := float64(i) * 0.15
	cx, cy := 60+float64(i)*12, 96+40*math.Sin(float64(i)*0.5)
	for y := 0; y < photoH; y++ {
		for x := 0; x < photoW; x++ {
			fx, fy := float64(x), float64(y)
			r := 128 + 90*math.Sin(fx/47+ph) + 30*math.Cos(fy/23-ph)
			g := 110 + 70*math.Sin((fx+fy)/61+ph*0.7) + 40*math.Sin(fy/17)
			b := 100 + 80*math.Cos(fx/29-fy/53+ph*1.3)
			if d := math.Hypot(fx-cx, fy-cy); d < 30 {
				k := 1 - d/30
				r, g, b = r+120*k, g+100*k, b+40*k
			}
			n := float64(rng.IntN(9) - 4)
			o := (y*photoW + x) * 3
			pix[o] = clamp(r + n)
			pix[o+1] = clamp(g + n)
			pix[o+2] = clamp(b + n)
		}
	}
	return pix
}

func clamp(v float64) byte { return byte(math.Max(0, math.Min(255, v))) }

// recordPhotos shows 12 photo-like frames in one place on an Xvnc desktop,
// each in a fresh xwud window (about 4 per second under load), then leaves
// the last one up for 4 s.
func recordPhotos(t *tb, rec func(string) *pair) {
	dir := t.TempDir()
	const frames = 12
	files := make([]string, frames)
	for i := range files {
		files[i] = filepath.Join(dir, fmt.Sprintf("f%02d.xwd", i))
		if err := writeXWD(files[i], photoW, photoH, photoFrame(i)); err != nil {
			t.Fatalf("writing %s: %v", files[i], err)
		}
	}
	x := testserver.StartXvnc(t, testserver.XvncOptions{})
	x.Run(t, "xsetroot", "-solid", "#3a6ea5")
	rec(x.Addr())
	time.Sleep(time.Second)
	var prev *testserver.Proc
	for _, f := range files {
		p := x.Start(t, "xwud", "-in", f, "-noclick", "-geometry", "+200+150")
		time.Sleep(250 * time.Millisecond)
		if prev != nil {
			prev.Kill()
		}
		prev = p
	}
	time.Sleep(4 * time.Second)
}
