package rfbdecode

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"kvmgate/framebuffer"
	"kvmgate/rfb"
)

// streamOrder lists the captured streams in the order the benchmarks and
// docs/benchmarks.md show them. Every one must exist in testdata/.
var streamOrder = []string{
	"raw", "copyrect", "rre", "hextile", "zlib", "zrle", "tight", "tight-jpeg8",
}

type fixture struct {
	s    *Stream
	shot *framebuffer.Canvas // the server's screenshot after the stream
}

var fixtures = map[string]*fixture{}

func loadFixture(tb testing.TB, name string) *fixture {
	tb.Helper()
	if f, ok := fixtures[name]; ok {
		return f
	}
	s, err := Load(filepath.Join("testdata", name+".bin.gz"))
	if err != nil {
		tb.Fatal(err)
	}
	shot, err := LoadPNG(filepath.Join("testdata", s.Workload+".png"))
	if err != nil {
		tb.Fatal(err)
	}
	f := &fixture{s: s, shot: shot}
	fixtures[name] = f
	return f
}

func TestTestdataHasEveryStream(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.bin.gz"))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range files {
		have[strings.TrimSuffix(filepath.Base(f), ".bin.gz")] = true
	}
	for _, name := range streamOrder {
		if !have[name] {
			t.Errorf("testdata/%s.bin.gz is missing", name)
		}
		delete(have, name)
	}
	for name := range have {
		t.Errorf("testdata/%s.bin.gz is not in streamOrder", name)
	}
}

// TestKvmgateDecodesCapturesExactly replays each captured stream through
// kvmgate's rfb.Client and compares the published framebuffer with the
// screenshot the server took: equal for lossless encodings, within
// minLossyPSNR for Tight with JPEG.
func TestKvmgateDecodesCapturesExactly(t *testing.T) {
	for _, name := range streamOrder {
		t.Run(name, func(t *testing.T) {
			f := loadFixture(t, name)
			if f.s.Width != 1920 || f.s.Height != 1080 {
				t.Fatalf("stream is %dx%d, want 1920x1080", f.s.Width, f.s.Height)
			}
			if got := firstRectEncoding(f.s.Timed()); got != f.s.Encoding && f.s.Encoding != rfb.EncodingCopyRect {
				t.Fatalf("first rectangle is %v, header says %v", got, f.s.Encoding)
			}
			got, err := DecodeKvmgate(f.s)
			if err != nil {
				t.Fatal(err)
			}
			if err := compare(f.s, got, f.shot); err != nil {
				t.Fatal(err)
			}
			if f.s.Lossy() {
				d, _ := CompareCanvas(got, f.shot)
				t.Logf("%d pixels differ from the screenshot, PSNR %.1f dB", d.Pixels, d.PSNR)
			}
		})
	}
}

// TestWarmupThenTimedMatches checks the benchmark's path: the synthetic
// Raw warm-up frame followed by the timed update leaves the same picture.
func TestWarmupThenTimedMatches(t *testing.T) {
	for _, name := range streamOrder {
		t.Run(name, func(t *testing.T) {
			f := loadFixture(t, name)
			warm, err := f.s.Warmup(f.shot)
			if err != nil {
				t.Fatal(err)
			}
			r, err := NewReplayer(f.s)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for _, u := range append(warm, f.s.Timed()) {
				if err := r.Feed(u); err != nil {
					t.Fatal(err)
				}
			}
			if err := compare(f.s, r.Snapshot(), f.shot); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestVnc2videoAgreement decodes each stream with vnc2video and reports,
// as data for docs/benchmarks.md, whether its picture matches kvmgate's.
// vnc2video's mistakes are not failures here; only a stream it has a
// decoder for but cannot parse at all is logged as such.
func TestVnc2videoAgreement(t *testing.T) {
	for _, name := range streamOrder {
		t.Run(name, func(t *testing.T) {
			f := loadFixture(t, name)
			if !HasDecoder(f.s.Encoding) {
				t.Logf("%s: vnc2video has no decoder for %v", name, f.s.Encoding)
				return
			}
			v, err := NewV2V(f.s)
			if err != nil {
				t.Fatal(err)
			}
			for i, u := range f.s.Updates {
				if err := v.Decode(u); err != nil {
					t.Logf("%s: vnc2video failed on update %d: %v", name, i, err)
					return
				}
			}
			ours, err := DecodeKvmgate(f.s)
			if err != nil {
				t.Fatal(err)
			}
			d, err := CompareImage(v.Image, ours)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: vnc2video differs from kvmgate in %d of %d pixels (PSNR %.1f dB)",
				name, d.Pixels, f.s.Width*f.s.Height, d.PSNR)
		})
	}
}

func TestStreamRoundTrip(t *testing.T) {
	s := &Stream{Header: Header{
		Name: "t", Workload: "w", Encoding: rfb.EncodingZRLE, Encodings: []rfb.Encoding{rfb.EncodingZRLE},
		Width: 2, Height: 1, ServerInit: []byte{0, 2, 0, 1}, PixelFormat: rfb.NativeFormat.Marshal(), Stateful: true,
	}, Updates: [][]byte{{0, 0, 0, 0}, {0, 0, 0, 1, 9}}}
	path := filepath.Join(t.TempDir(), "t.bin.gz")
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, s)
	}
}

func TestLoadRejectsBadFiles(t *testing.T) {
	good := &Stream{Header: Header{Name: "t", PixelFormat: rfb.NativeFormat.Marshal()}, Updates: [][]byte{{0, 0, 0, 0}}}
	var buf bytes.Buffer
	if err := good.write(&buf); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	updateAt := len(raw) - 8 // u32 length, then the 4-byte update
	cases := []struct {
		name string
		edit func([]byte) []byte
	}{
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"no updates", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[updateAt-4:], 0)
			return b[:updateAt]
		}},
		{"huge update", func(b []byte) []byte { binary.BigEndian.PutUint32(b[updateAt:], 1<<30); return b }},
		{"not an update", func(b []byte) []byte { b[updateAt+4] = 3; return b }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.edit(bytes.Clone(raw))
			path := filepath.Join(t.TempDir(), "bad.bin.gz")
			if err := os.WriteFile(path, gzipBytes(t, b), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(path); err == nil {
				t.Fatal("Load accepted a bad file")
			}
		})
	}
}

func gzipBytes(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func firstRectEncoding(u []byte) rfb.Encoding {
	if len(u) < 16 {
		return -1
	}
	return rfb.Encoding(int32(binary.BigEndian.Uint32(u[12:])))
}
