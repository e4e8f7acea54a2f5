package rfb

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"kvmgate/framebuffer"
)

// scriptConn is a net.Conn whose reads come from a fixed byte string and
// whose writes are discarded.
type scriptConn struct {
	r io.Reader
}

func (c *scriptConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return nil }
func (c *scriptConn) RemoteAddr() net.Addr             { return nil }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// handshake38None is a complete RFB 3.8 handshake with security None and a
// 64×48 desktop.
func handshake38None() []byte {
	b := []byte("RFB 003.008\n")
	b = append(b, 1, secNone)
	b = append(b, u32(0)...)
	return append(b, serverInitMsg(64, 48, NativeFormat, "fuzz")...)
}

func FuzzHandshake(f *testing.F) {
	f.Add(handshake38None())
	f.Add(append([]byte("RFB 003.003\n\x00\x00\x00\x02"), make([]byte, 16)...))
	f.Add([]byte("RFB 003.008\n\x00\x00\x00\x00\x05hello"))
	f.Add([]byte("RFB 003.008\n\x01\x13\x00\x02\x00\x02\x00\x00\x01\x02\x00\x00\x00\x02"))
	f.Add([]byte("RFB 003.007\n\x01\x01\x01\x00\x01\x00\x20\x18\x00\x01\x00\xff\x00\xff\x00\xff\x10\x08\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := NewClient(ctx, &scriptConn{r: bytes.NewReader(data)}, Options{Password: "pw", QualityLevel: -1, CompressLevel: -1})
		if err == nil {
			w, h := c.Size()
			if framebuffer.CheckSize(w, h) != nil {
				t.Fatalf("accepted size %dx%d", w, h)
			}
			c.Close()
		}
	})
}

func FuzzServerMessages(f *testing.F) {
	for _, seed := range serverMessageSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		stream := append(handshake38None(), data...)
		c, err := NewClient(context.Background(), &scriptConn{r: bytes.NewReader(stream)}, NewOptions())
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		fb := framebuffer.New()
		if err := c.Run(context.Background(), fb); err == nil {
			t.Fatal("Run returned nil at the end of the stream")
		}
		if w, h := fb.Size(); framebuffer.CheckSize(w, h) != nil {
			t.Fatalf("framebuffer %dx%d", w, h)
		}
	})
}

// serverMessageSeeds are message streams that exercise each handler.
func serverMessageSeeds() [][]byte {
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	return [][]byte{
		join(updateHdr(1), rectHdr(0, 0, 2, 2, EncodingRaw), make([]byte, 16)),
		join(updateHdr(0xffff), rectHdr(0, 0, 0, 0, EncodingDesktopName), str32("name"),
			rectHdr(0, 0, 32, 16, EncodingExtendedDesktopSize), []byte{1, 0, 0, 0}, u32(1), appendRect16(nil, framebuffer.Rect{W: 32, H: 16}), u32(0),
			rectHdr(0, 0, 0, 0, EncodingQEMUExtendedKey),
			rectHdr(0, 0, 0, 0, EncodingQEMULEDState), []byte{7},
			rectHdr(0, 0, 0, 0, EncodingVMwareLEDState), u32(2),
			rectHdr(0, 0, 0, 0, EncodingQEMUPointerMotion),
			rectHdr(0, 0, 0, 0, EncodingLastRect)),
		join(updateHdr(2), rectHdr(0, 0, 16, 8, EncodingDesktopSize),
			rectHdr(1, 1, 2, 2, EncodingCursor), make([]byte, 16), []byte{0xc0, 0xc0}),
		join(updateHdr(1), rectHdr(0, 0, 2, 1, EncodingXCursor), []byte{255, 0, 0, 0, 0, 255, 0x80, 0xc0}),
		join(updateHdr(1), rectHdr(0, 0, 1, 1, EncodingCursorWithAlpha), u32(0), []byte{1, 2, 3, 4}),
		join(updateHdr(2), rectHdr(0, 0, 2, 2, EncodingRaw), make([]byte, 16), rectHdr(2, 2, 2, 2, EncodingCopyRect), u16(0), u16(0)),
		join([]byte{msgSetColourMapEntries, 0}, u16(0), u16(2), make([]byte, 12), []byte{msgBell}),
		join([]byte{msgServerCutText, 0, 0, 0}, str32("clip")),
		join(extCut(clipCaps|clipText|clipProvide|clipNotify|clipRequest, u32(100)),
			extCut(clipNotify|clipText, nil), extCut(clipRequest|clipText, nil), extCut(clipPeek, nil),
			extCut(clipProvide|clipText, zlibBytes(append(u32(3), "hi\x00"...)))),
		join(serverFence(1<<31|3, []byte("p")), []byte{msgEndOfContinuousUpdates}, []byte{msgEndOfContinuousUpdates}),
		join([]byte{msgServerXVP, 0, 1, 1}, []byte{msgServerXVP, 0, 1, 0}),
		join([]byte{msgServerQEMU, 1, 0, 2}, u32(4), []byte{1, 2, 3, 4}),
	}
}
