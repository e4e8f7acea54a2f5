package rfb

import (
	"encoding/binary"
	"sync"
	"syscall"
	"testing"
	"time"

	"kvmgate/framebuffer"
)

// The decode benchmarks decode a whole 1920×1080 desktop (flat
// backgrounds, windows, lines of anti-aliased glyphs and a 640×400
// photo-like area, see testEncDesktop) encoded by the test encoder the way
// a size-minded server would, and report Mpixel/s next to the payload's
// bytes/s.

const benchW, benchH = 1920, 1080

var benchPayloads sync.Map // string → []byte

// benchPayload returns the payload of the whole desktop in encoding e and
// format pf, made once.
func benchPayload(name string, e Encoding, pf PixelFormat) []byte {
	key := name + "/" + e.String()
	if p, ok := benchPayloads.Load(key); ok {
		return p.([]byte)
	}
	pic := testEncDesktop(&pf, benchW, benchH)
	r := framebuffer.Rect{W: benchW, H: benchH}
	var p []byte
	switch e {
	case EncodingRaw:
		p = testEncRaw(&pf, pic, r)
	case EncodingRRE:
		p = testEncRRE(&pf, pic, r)
	case EncodingHextile:
		p = (&testHextileEnc{pf: &pf, stats: map[byte]int{}}).rect(pic, r)
	case EncodingZRLE:
		p = newTestZRLEEnc(&pf, nil).rect(pic, r)
	case EncodingTRLE:
		p = (&testTileEnc{pf: &pf, size: 16, trle: true}).rect(nil, pic, r)
	}
	benchPayloads.Store(key, p)
	return p
}

// benchDecode decodes payload as the rectangle r of encoding e b.N times,
// each time as a new connection would (a fresh zlib stream for ZRLE).
func benchDecode(b *testing.B, e Encoding, pf PixelFormat, c *framebuffer.Canvas, payload []byte, r framebuffer.Rect) {
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	cpu0 := benchCPUTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var batch framebuffer.Batch
		if err := testEncDecode(e, pf, c, &batch, payload, r); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	pixels := float64(r.Area()) * float64(b.N)
	b.ReportMetric(pixels/b.Elapsed().Seconds()/1e6, "Mpixel/s")
	// On a shared machine wall time includes waiting for a CPU; the
	// process's CPU time (GC included) shows what decoding costs.
	if cpu := benchCPUTime() - cpu0; cpu > 0 {
		b.ReportMetric(pixels/cpu.Seconds()/1e6, "Mpixel/cpu-s")
	}
}

// benchCPUTime returns the user and system CPU time the process has used.
func benchCPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchEncoding(b *testing.B, e Encoding) {
	for _, f := range []struct {
		name string
		pf   PixelFormat
	}{{"native", NativeFormat}, {"rgb565", Format16}} {
		b.Run(f.name, func(b *testing.B) {
			payload := benchPayload(f.name, e, f.pf)
			c, err := framebuffer.NewCanvas(benchW, benchH)
			if err != nil {
				b.Fatal(err)
			}
			benchDecode(b, e, f.pf, c, payload, framebuffer.Rect{W: benchW, H: benchH})
		})
	}
}

func BenchmarkDecodeRaw(b *testing.B)     { benchEncoding(b, EncodingRaw) }
func BenchmarkDecodeRRE(b *testing.B)     { benchEncoding(b, EncodingRRE) }
func BenchmarkDecodeHextile(b *testing.B) { benchEncoding(b, EncodingHextile) }
func BenchmarkDecodeZRLE(b *testing.B)    { benchEncoding(b, EncodingZRLE) }
func BenchmarkDecodeTRLE(b *testing.B)    { benchEncoding(b, EncodingTRLE) }

// BenchmarkDecodeCopyRect scrolls the whole screen up by 20 rows.
func BenchmarkDecodeCopyRect(b *testing.B) {
	c, err := framebuffer.NewCanvas(benchW, benchH)
	if err != nil {
		b.Fatal(err)
	}
	payload := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 0), 20)
	benchDecode(b, EncodingCopyRect, NativeFormat, c, payload, framebuffer.Rect{W: benchW, H: benchH - 20})
}
