package rfbserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/rfb"
)

// handshake38 is a client's side of a 3.8 handshake with no security.
var handshake38 = []byte("RFB 003.008\n\x01\x01")

// fuzzSeeds are well-formed message sequences the fuzzer starts from.
func fuzzSeeds() [][]byte {
	req := func(inc byte) []byte { return []byte{msgUpdateRequest, inc, 0, 0, 0, 0, 0, 40, 0, 30} }
	encs := func(e ...rfb.Encoding) []byte {
		b := []byte{msgSetEncodings, 0}
		b = binary.BigEndian.AppendUint16(b, uint16(len(e)))
		for _, x := range e {
			b = binary.BigEndian.AppendUint32(b, uint32(int32(x)))
		}
		return b
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	return [][]byte{
		req(0),
		cat(encs(rfb.EncodingZRLE, rfb.EncodingCopyRect, rfb.EncodingCursor, rfb.EncodingExtendedDesktopSize), req(0), req(1)),
		cat(append([]byte{msgSetPixelFormat, 0, 0, 0}, rfb.Format16.Marshal()...), encs(rfb.EncodingHextile), req(0)),
		cat([]byte{msgKeyEvent, 1, 0, 0, 0, 0, 0, 'a'}, []byte{msgPointerEvent, 9, 0, 5, 0, 6}),
		{msgClientCutText, 0, 0, 0, 0, 0, 0, 3, 'a', 'b', 'c'},
		{msgQEMU, 0, 0, 1, 0, 0, 0, 'a', 0, 0, 0, 0x1e},
		cat([]byte{msgSetDesktopSize, 0, 0, 10, 0, 10, 1, 0}, make([]byte, 16), req(1)),
		// Tight with quality and compression levels, continuous updates
		// on, a fence request and a fence answer.
		cat(encs(rfb.EncodingTight, rfb.EncodingJPEGQuality0+6, rfb.EncodingCompressLevel0+2,
			rfb.EncodingContinuousUpdates, rfb.EncodingFence), req(0),
			[]byte{msgEnableCU, 1, 0, 0, 0, 0, 0, 40, 0, 30},
			[]byte{msgClientFence, 0, 0, 0, 0x80, 0, 0, 3, 2, 'h', 'i'},
			[]byte{msgClientFence, 0, 0, 0, 0, 0, 0, 1, 0}),
		cat(encs(rfb.EncodingTightPNG, rfb.EncodingJPEGQuality0), req(0)),
		// Extended clipboard: caps, notify, request, peek and a provide.
		cat(encs(rfb.EncodingExtendedClipboard, rfb.EncodingZRLE),
			[]byte{msgClientCutText, 0, 0, 0, 0xff, 0xff, 0xff, 0xf8, 0x1f, 0, 0, 1, 0, 0, 0x10, 0},
			[]byte{msgClientCutText, 0, 0, 0, 0xff, 0xff, 0xff, 0xfc, 0x08, 0, 0, 1},
			[]byte{msgClientCutText, 0, 0, 0, 0xff, 0xff, 0xff, 0xfc, 0x02, 0, 0, 1},
			[]byte{msgClientCutText, 0, 0, 0, 0xff, 0xff, 0xff, 0xfc, 0x04, 0, 0, 0},
			clipProvideSeed()),
	}
}

// clipProvideSeed is an extended clipboard provide message with text.
func clipProvideSeed() []byte {
	p, _ := clipProvidePayload("hello\nworld", 1<<10)
	b := appendExtClip(nil, clipProvide|clipText, p)
	b[0] = msgClientCutText // the client's message has the same layout
	return b
}

// FuzzServeConn feeds arbitrary client messages after a valid handshake:
// the server must neither panic nor hang, whatever it is sent.
func FuzzServeConn(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	canvas, _ := framebuffer.NewCanvas(40, 30)
	pattern(canvas, 3)
	fb := framebuffer.New()
	var batch framebuffer.Batch
	fb.Publish(canvas, &batch)
	fb.SetCursor(&framebuffer.Cursor{W: 2, H: 2, Pix: make([]byte, 16)})
	s := &Server{FB: fb, Input: newRecorder(), MaxCutText: 1 << 10, Logger: slog.New(slog.DiscardHandler)}

	f.Fuzz(func(t *testing.T, msgs []byte) {
		if len(msgs) > 1<<16 {
			return
		}
		a, b := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.ServeConn(context.Background(), a)
		}()
		// Drain what the server writes; the pipe is unbuffered.
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			io.Copy(io.Discard, b)
		}()
		b.SetWriteDeadline(time.Now().Add(5 * time.Second))
		b.Write(handshake38)
		b.Write(msgs)
		// Closing the client side must end the connection.
		b.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("ServeConn did not return after the client closed")
		}
		<-drained
	})
}

// FuzzHostileBesideGood runs each fuzzed client next to a well-behaved one
// (kvmgate's RFB client, connected for the whole run) on the same server:
// after every hostile connection, a change to the picture must still reach
// the good client.
func FuzzHostileBesideGood(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	be := newBackend(f, 64, 48)
	s := &Server{FB: be.fb, Input: newRecorder(), MaxCutText: 1 << 10, Logger: slog.New(slog.DiscardHandler)}
	addr := startServer(f, s)
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	opts := rfb.NewOptions()
	opts.Encodings = []rfb.Encoding{rfb.EncodingTight, rfb.EncodingZRLE}
	good, err := rfb.Dial(ctx, addr, opts)
	if err != nil {
		f.Fatal(err)
	}
	goodFB := framebuffer.New()
	done := make(chan struct{})
	go func() {
		defer close(done)
		good.Run(ctx, goodFB)
	}()
	f.Cleanup(func() {
		good.Close()
		<-done
	})
	var n uint32

	f.Fuzz(func(t *testing.T, msgs []byte) {
		if len(msgs) > 1<<16 {
			return
		}
		a, b := net.Pipe()
		served := make(chan struct{})
		go func() {
			defer close(served)
			s.ServeConn(context.Background(), a)
		}()
		go io.Copy(io.Discard, b)
		b.SetWriteDeadline(time.Now().Add(5 * time.Second))
		b.Write(handshake38)
		b.Write(msgs)
		b.Close()
		<-served

		n++
		colour := 0xff000000 | n&0xffffff
		r := framebuffer.Rect{X: int(n % 60), Y: int(n % 44), W: 4, H: 4}
		be.canvas.Fill(r, colour)
		be.batch.Damage(r)
		be.fb.Publish(be.canvas, &be.batch)
		deadline := time.Now().Add(10 * time.Second)
		for !goodFB.Snapshot().Equal(be.canvas) {
			if time.Now().After(deadline) {
				t.Fatal("the good client stopped getting updates after a hostile one")
			}
			time.Sleep(time.Millisecond)
		}
	})
}
