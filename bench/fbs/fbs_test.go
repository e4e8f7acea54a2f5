package fbs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"kvmgate/framebuffer"
)

func TestWriteRead(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	in := []Block{{[]byte("RFB 003.008\n"), 0}, {[]byte{1}, 5}, {[]byte("abcde"), 5}, {[]byte("wxyz"), 1000}}
	for _, b := range in {
		if err := w.WriteBlock(b.Data, b.Ms); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteBlock(nil, 7); err != nil {
		t.Fatal(err)
	}
	// Header, then per block 4 + padded data + 4.
	if want := 12 + (8 + 12) + (8 + 4) + (8 + 8) + (8 + 4); buf.Len() != want {
		t.Errorf("file is %d bytes, want %d", buf.Len(), want)
	}
	if got, want := w.Bytes(), int64(12+1+5+4); got != want {
		t.Errorf("Bytes = %d, want %d", got, want)
	}
	out, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("read %d blocks, want %d", len(out), len(in))
	}
	for i := range in {
		if !bytes.Equal(out[i].Data, in[i].Data) || out[i].Ms != in[i].Ms {
			t.Errorf("block %d = %q at %d, want %q at %d", i, out[i].Data, out[i].Ms, in[i].Data, in[i].Ms)
		}
	}
}

func TestReadErrors(t *testing.T) {
	valid := func() []byte {
		var buf bytes.Buffer
		w, _ := NewWriter(&buf)
		w.WriteBlock([]byte("hello"), 3)
		return buf.Bytes()
	}()
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"bad magic", []byte("RFB 003.008\n")},
		{"truncated length", valid[:14]},
		{"truncated data", valid[:18]},
		{"truncated timestamp", valid[:len(valid)-1]},
		{"huge block", append([]byte(Magic), 0xff, 0xff, 0xff, 0xff)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tt.in))
			var fe FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("Read = %v, want a FormatError", err)
			}
		})
	}
	if _, err := Read(bytes.NewReader(valid)); err != nil {
		t.Fatalf("valid file: %v", err)
	}
}

func TestReadMonotonic(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf)
	w.WriteBlock([]byte("a"), 50)
	w.WriteBlock([]byte("b"), 20)
	bs, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if bs[1].Ms != 50 {
		t.Errorf("second block at %d ms, want clamped to 50", bs[1].Ms)
	}
}

func TestRelayRecordsServerBytes(t *testing.T) {
	for _, th := range []*Throttle{nil, {Bitrate: 8e6, RTT: 40 * time.Millisecond, Loss: 0.1}} {
		name := "loopback"
		if th != nil {
			name = "throttled"
		}
		t.Run(name, func(t *testing.T) { testRelay(t, th) })
	}
}

func testRelay(t *testing.T, th *Throttle) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sent := bytes.Repeat([]byte("0123456789"), 10000)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write(sent[:10])
		var b [3]byte
		io.ReadFull(c, b[:]) // the client's bytes pass through
		c.Write(sent[10:])
	}()
	var file bytes.Buffer
	w, _ := NewWriter(&file)
	start := time.Now()
	r, err := StartRelay(ln.Addr().String(), w, start, th)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 10)
	if _, err := io.ReadFull(c, head); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("abc"))
	rest, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	<-r.Done()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := append(head, rest...); !bytes.Equal(got, sent) {
		t.Fatalf("client got %d bytes, want %d", len(got), len(sent))
	}
	blocks, err := Read(&file)
	if err != nil {
		t.Fatal(err)
	}
	var rec []byte
	for _, b := range blocks {
		rec = append(rec, b.Data...)
	}
	if !bytes.Equal(rec, sent) {
		t.Fatalf("recorded %d bytes, want the %d the server sent", len(rec), len(sent))
	}
	if th != nil {
		// Lower bounds only: the first bytes cross the path once, the last
		// ones also wait for 100 kB to pass an 8 Mbit/s bottleneck.
		if first := blocks[0].Ms; first < 20 {
			t.Errorf("first block recorded at %d ms, before the 20 ms one-way delay", first)
		}
		if last := blocks[len(blocks)-1].Ms; last < 100 {
			t.Errorf("last block recorded at %d ms; 100 kB need 100 ms at 8 Mbit/s", last)
		}
	}
}

func TestPlayerPaced(t *testing.T) {
	p := NewPlayer([]Block{{[]byte("ab"), 0}, {[]byte("cd"), 30}}, PlayerOptions{Paced: true, MaxRead: 1})
	start := time.Now()
	got, err := io.ReadAll(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "abcd" {
		t.Fatalf("read %q", got)
	}
	if time.Since(start) < 30*time.Millisecond {
		t.Error("paced player delivered the 30 ms block early")
	}
	p.Close()
	if _, err := p.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close = %v", err)
	}
}

// replayHashes replays a recording and returns a hash of every frame.
func replayHashes(t testing.TB, path string) ([][32]byte, []Frame) {
	blocks, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ReadMeta(path)
	if err != nil {
		t.Fatal(err)
	}
	fb := framebuffer.New()
	var hashes [][32]byte
	var frames []Frame
	err = Replay(context.Background(), blocks, m, fb, func(f Frame) error {
		c := fb.Snapshot()
		hashes = append(hashes, sha256.Sum256(c.Pix))
		frames = append(frames, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hashes, frames
}

func TestReplayDeterministic(t *testing.T) {
	for _, name := range []string{"seabios", "seabios-novnc"} {
		t.Run(name, func(t *testing.T) {
			path := "../testdata/" + name + ".fbs.gz"
			h1, f1 := replayHashes(t, path)
			h2, _ := replayHashes(t, path)
			if len(h1) < 2 {
				t.Fatalf("only %d frames replayed", len(h1))
			}
			if len(h1) != len(h2) {
				t.Fatalf("replays gave %d and %d frames", len(h1), len(h2))
			}
			for i := range h1 {
				if h1[i] != h2[i] {
					t.Fatalf("frame %d differs between replays", i)
				}
			}
			for i := 1; i < len(f1); i++ {
				if f1[i].Ms < f1[i-1].Ms || f1[i].Offset <= f1[i-1].Offset {
					t.Fatalf("frame %d (%+v) does not follow frame %d (%+v)", i, f1[i], i-1, f1[i-1])
				}
			}
			if !f1[len(f1)-1].Last {
				t.Error("last frame not marked Last")
			}
			if h1[0] == h1[len(h1)-1] {
				t.Error("first and last frames are the same picture; the boot screen should change")
			}
		})
	}
}

// TestReplayVariantsAgree checks that both recordings of a workload, made
// at once by differently configured clients, end on the same screen.
func TestReplayVariantsAgree(t *testing.T) {
	h1, _ := replayHashes(t, "../testdata/seabios.fbs.gz")
	h2, _ := replayHashes(t, "../testdata/seabios-novnc.fbs.gz")
	if h1[len(h1)-1] != h2[len(h2)-1] {
		t.Error("the lossless and noVNC-default recordings end on different pictures")
	}
}

func BenchmarkRead(b *testing.B) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf)
	blk := bytes.Repeat([]byte{7}, 1500)
	for i := range 1000 {
		w.WriteBlock(blk, uint32(i))
	}
	b.SetBytes(int64(buf.Len()))
	for b.Loop() {
		if _, err := Read(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReplay measures stepping recordings frame by frame through
// kvmgate's rfb client (one-byte reads, a stop after every update).
func BenchmarkReplay(b *testing.B) {
	for _, name := range []string{"seabios", "linux-console", "photo-motion"} {
		b.Run(name, func(b *testing.B) {
			path := "../testdata/" + name + ".fbs.gz"
			blocks, err := ReadFile(path)
			if err != nil {
				b.Fatal(err)
			}
			m, err := ReadMeta(path)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(Size(blocks))
			for b.Loop() {
				if err := Replay(context.Background(), blocks, m, framebuffer.New(), func(Frame) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf)
	w.WriteBlock([]byte("RFB 003.008\n"), 0)
	w.WriteBlock([]byte{0, 0, 0, 1}, 40)
	f.Add(buf.Bytes())
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		blocks, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		// What parses must write back to a file that parses the same.
		var out bytes.Buffer
		w, _ := NewWriter(&out)
		for _, b := range blocks {
			w.WriteBlock(b.Data, b.Ms)
		}
		again, err := Read(&out)
		if err != nil || len(again) != len(blocks) {
			t.Fatalf("rewritten file: %d blocks, %v; want %d", len(again), err, len(blocks))
		}
	})
}
