package aten

import (
	"testing"

	"kvmgate/framebuffer"
)

// BenchmarkAST2100Frame4 decodes the captured full 1024×768 4:2:0 frame.
func BenchmarkAST2100Frame4(b *testing.B) {
	frame := loadFrame4(b)
	c, _ := framebuffer.NewCanvas(1024, 768)
	var d AST2100Decoder
	var batch framebuffer.Batch
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		batch = framebuffer.Batch{}
		if err := d.Decode(c, frame, &batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(1024*768)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpixel/s")
	b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/frame")
}

// incrementalFrame420 builds a 1024×768 4:2:0 incremental frame that
// repaints a 320×64 area (20×4 MCUs, 8% of the screen, as typing a few
// lines into a console does) with textured JPEG MCUs: DC plus a few AC
// coefficients per block, one position jump per MCU row.
func incrementalFrame420() []byte {
	f := newFrame(5, 5, Subsampling420)
	acL, acC := encAC[0], encAC[1]
	putAC := func(t map[uint8]huffCode, run, v int) {
		bits, n := magnitude(v)
		c := t[uint8(run<<4|n)]
		f.w.put(c.code, c.n)
		f.w.put(bits, n)
	}
	for row := 0; row < 4; row++ {
		for col := 0; col < 20; col++ {
			if col == 0 {
				f.jump(codeJPEG|codeJumpFlag, 10, 20+row)
			} else {
				f.code(codeJPEG)
			}
			for i := 0; i < 6; i++ {
				comp := 0
				if i >= 4 {
					comp = i - 3
				}
				t := min(comp, 1)
				diff := (col*7+i*3)%41 - 20
				f.dc[comp] += diff
				bits, n := magnitude(diff)
				c := encDC[t][uint8(n)]
				f.w.put(c.code, c.n)
				f.w.put(bits, n)
				ac := acL
				if t == 1 {
					ac = acC
				}
				if v := 5 - (col+i)%11; v != 0 {
					putAC(ac, 0, v)
				}
				putAC(ac, 2, 3)
				putAC(ac, 1, -4)
				eob := ac[0]
				f.w.put(eob.code, eob.n)
			}
		}
	}
	return f.finish()
}

// BenchmarkAST2100Incremental decodes an incremental frame that repaints
// 80 of the 3072 MCUs of a 1024×768 screen.
func BenchmarkAST2100Incremental(b *testing.B) {
	frame := incrementalFrame420()
	c, _ := framebuffer.NewCanvas(1024, 768)
	var d AST2100Decoder
	var batch framebuffer.Batch
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		batch = framebuffer.Batch{}
		if err := d.Decode(c, frame, &batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(320*64)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpixel/s")
	b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/frame")
}

// BenchmarkHermonRaw decodes a raw 1024×768 HERMON rectangle.
func BenchmarkHermonRaw(b *testing.B) {
	body := hermonBody(1, 0, make([]byte, 1024*768*2))
	c, _ := framebuffer.NewCanvas(1024, 768)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for b.Loop() {
		if err := DecodeHermon(c, c.Bounds(), body, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(1024*768)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpixel/s")
}
