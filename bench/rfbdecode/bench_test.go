package rfbdecode

import (
	"testing"
)

// BenchmarkDecode decodes each captured update with kvmgate's client
// (BenchmarkDecode/<stream>/kvmgate) and with vnc2video's decoder for the
// same encoding (BenchmarkDecode/<stream>/vnc2video). It reports the
// compressed bytes per second (MB/s) and the decoded pixels per second
// (Mpixel/s).
//
// kvmgate's figure is its whole update path: read from the connection's
// buffer, decode into the client's private canvas, publish the damage into
// the shared framebuffer.Framebuffer (a copy of every decoded pixel), send
// the next update request. vnc2video's is its decoders' Read calls painting
// an *image.RGBA.
//
// Encodings with zlib state (Zlib, ZRLE, Tight) need fresh streams for
// every repetition of the captured bytes, so each iteration starts a new
// connection (kvmgate) or new decoders (vnc2video), untimed, and replays
// the untimed warm-up first; stateless encodings replay the update again
// and again on one connection.
func BenchmarkDecode(b *testing.B) {
	for _, name := range streamOrder {
		f := loadFixture(b, name)
		warm, err := f.s.Warmup(f.shot)
		if err != nil {
			b.Fatal(err)
		}
		px, err := f.s.Pixels(len(f.s.Updates) - 1)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/kvmgate", func(b *testing.B) { benchKvmgate(b, f.s, warm, px) })
		if HasDecoder(f.s.Encoding) {
			b.Run(name+"/vnc2video", func(b *testing.B) { benchV2V(b, f.s, px) })
		}
	}
}

func benchKvmgate(b *testing.B, s *Stream, warm [][]byte, px int) {
	timed := s.Timed()
	b.SetBytes(int64(len(timed)))
	b.ReportAllocs()
	start := func() *Replayer {
		r, err := NewReplayer(s)
		if err != nil {
			b.Fatal(err)
		}
		for _, u := range warm {
			if err := r.Feed(u); err != nil {
				b.Fatal(err)
			}
		}
		return r
	}
	if s.Stateful {
		b.StopTimer()
		for i := 0; i < b.N; i++ {
			r := start()
			b.StartTimer()
			err := r.Feed(timed)
			b.StopTimer()
			r.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
	} else {
		r := start()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := r.Feed(timed); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		r.Close()
	}
	reportPixels(b, px)
}

func benchV2V(b *testing.B, s *Stream, px int) {
	timed := s.Timed()
	b.SetBytes(int64(len(timed)))
	b.ReportAllocs()
	v, err := NewV2V(s)
	if err != nil {
		b.Fatal(err)
	}
	for _, u := range s.Updates[:len(s.Updates)-1] {
		if err := v.Decode(u); err != nil {
			b.Skipf("vnc2video cannot decode the warm-up: %v", err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if s.Stateful {
			b.StopTimer()
			v.Reset()
			b.StartTimer()
		}
		if err := v.Decode(timed); err != nil {
			b.Skipf("vnc2video cannot decode %s: %v", s.Name, err)
		}
	}
	b.StopTimer()
	reportPixels(b, px)
}

func reportPixels(b *testing.B, px int) {
	if sec := b.Elapsed().Seconds(); sec > 0 {
		b.ReportMetric(float64(px)*float64(b.N)/sec/1e6, "Mpixel/s")
	}
}
