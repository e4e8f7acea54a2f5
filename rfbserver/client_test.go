package rfbserver

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/rfb"
)

// testClient is a minimal RFB client written from the specification, with
// its own decoders, to check what the server sends.
type testClient struct {
	t    testing.TB
	nc   net.Conn
	br   *bufio.Reader
	pf   rfb.PixelFormat
	w, h int
	name string
	fb   *framebuffer.Canvas

	zbuf bytes.Buffer
	zr   io.ReadCloser

	// What the updates carried, besides pixels.
	rectCount map[rfb.Encoding]int
	extSizes  []extSize
	cursor    *framebuffer.Cursor
	cursorSet bool
	bells     int
	cutText   []string
}

type extSize struct{ reason, status, w, h int }

// dialTest connects and runs the handshake with the given version string
// ("RFB 003.008\n") and password ("" for None).
func dialTest(t testing.TB, addr, version, password string) (*testClient, error) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &testClient{t: t, nc: nc, br: bufio.NewReader(nc), rectCount: map[rfb.Encoding]int{}}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.handshake(version, password); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	t.Cleanup(func() { nc.Close() })
	return c, nil
}

func (c *testClient) handshake(version, password string) error {
	var v [12]byte
	if _, err := io.ReadFull(c.br, v[:]); err != nil {
		return err
	}
	if string(v[:]) != "RFB 003.008\n" {
		return fmt.Errorf("server version %q", v)
	}
	if _, err := io.WriteString(c.nc, version); err != nil {
		return err
	}
	var sec byte
	if version == "RFB 003.003\n" || version == "RFB 003.005\n" {
		var b [4]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return err
		}
		sec = b[3]
	} else {
		n, err := c.br.ReadByte()
		if err != nil {
			return err
		}
		types := make([]byte, n)
		if _, err := io.ReadFull(c.br, types); err != nil {
			return err
		}
		sec = types[0]
		if _, err := c.nc.Write([]byte{sec}); err != nil {
			return err
		}
	}
	if sec == secVNCAuth {
		var ch [16]byte
		if _, err := io.ReadFull(c.br, ch[:]); err != nil {
			return err
		}
		resp, err := vncAuthResponse(password, ch[:])
		if err != nil {
			return err
		}
		if _, err := c.nc.Write(resp); err != nil {
			return err
		}
	}
	if sec == secVNCAuth || version == "RFB 003.008\n" {
		var b [4]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return err
		}
		if binary.BigEndian.Uint32(b[:]) != 0 {
			reason := ""
			if version == "RFB 003.008\n" {
				if n, err := c.u32(); err == nil {
					r := make([]byte, n)
					io.ReadFull(c.br, r)
					reason = string(r)
				}
			}
			return fmt.Errorf("security failed: %q", reason)
		}
	}
	if _, err := c.nc.Write([]byte{1}); err != nil {
		return err
	}
	var si [24]byte
	if _, err := io.ReadFull(c.br, si[:]); err != nil {
		return err
	}
	c.w, c.h = int(binary.BigEndian.Uint16(si[0:])), int(binary.BigEndian.Uint16(si[2:]))
	c.pf = rfb.UnmarshalPixelFormat(si[4:20])
	name := make([]byte, binary.BigEndian.Uint32(si[20:]))
	if _, err := io.ReadFull(c.br, name); err != nil {
		return err
	}
	c.name = string(name)
	c.fb, _ = framebuffer.NewCanvas(c.w, c.h)
	return nil
}

func (c *testClient) u32() (uint32, error) {
	var b [4]byte
	_, err := io.ReadFull(c.br, b[:])
	return binary.BigEndian.Uint32(b[:]), err
}

func (c *testClient) send(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

func (c *testClient) setPixelFormat(pf rfb.PixelFormat) {
	c.pf = pf
	c.send(append([]byte{msgSetPixelFormat, 0, 0, 0}, pf.Marshal()...))
}

func (c *testClient) setEncodings(encs ...rfb.Encoding) {
	b := []byte{msgSetEncodings, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(len(encs)))
	for _, e := range encs {
		b = binary.BigEndian.AppendUint32(b, uint32(int32(e)))
	}
	c.send(b)
}

func (c *testClient) request(incremental bool) {
	inc := byte(0)
	if incremental {
		inc = 1
	}
	b := []byte{msgUpdateRequest, inc}
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(c.w))
	b = binary.BigEndian.AppendUint16(b, uint16(c.h))
	c.send(b)
}

// readUpdate reads messages until a FramebufferUpdate has been applied.
func (c *testClient) readUpdate() error {
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.nc.SetReadDeadline(time.Time{})
	for {
		t, err := c.br.ReadByte()
		if err != nil {
			return err
		}
		switch t {
		case msgBell:
			c.bells++
		case msgServerCutText:
			var b [3]byte
			io.ReadFull(c.br, b[:])
			n, err := c.u32()
			if err != nil {
				return err
			}
			text := make([]byte, n)
			if _, err := io.ReadFull(c.br, text); err != nil {
				return err
			}
			c.cutText = append(c.cutText, latin1ToString(text))
		case msgFramebufferUpdate:
			return c.update()
		default:
			return fmt.Errorf("unexpected server message %d", t)
		}
	}
}

func (c *testClient) update() error {
	var b [3]byte
	if _, err := io.ReadFull(c.br, b[:]); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint16(b[1:]))
	for i := 0; i < n; i++ {
		var h [12]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return err
		}
		r := framebuffer.Rect{
			X: int(binary.BigEndian.Uint16(h[0:])), Y: int(binary.BigEndian.Uint16(h[2:])),
			W: int(binary.BigEndian.Uint16(h[4:])), H: int(binary.BigEndian.Uint16(h[6:])),
		}
		e := rfb.Encoding(int32(binary.BigEndian.Uint32(h[8:])))
		c.rectCount[e]++
		if err := c.rect(r, e); err != nil {
			return fmt.Errorf("rect %v %v: %w", r, e, err)
		}
	}
	return nil
}

func (c *testClient) rect(r framebuffer.Rect, e rfb.Encoding) error {
	switch e {
	case rfb.EncodingDesktopSize:
		c.w, c.h = r.W, r.H
		c.fb.Resize(r.W, r.H)
		return nil
	case rfb.EncodingExtendedDesktopSize:
		var b [4]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return err
		}
		if _, err := io.CopyN(io.Discard, c.br, int64(b[0])*16); err != nil {
			return err
		}
		c.extSizes = append(c.extSizes, extSize{r.X, r.Y, r.W, r.H})
		if r.X != extSizeClient {
			c.w, c.h = r.W, r.H
			c.fb.Resize(r.W, r.H)
		}
		return nil
	case rfb.EncodingDesktopName:
		n, err := c.u32()
		if err != nil {
			return err
		}
		name := make([]byte, n)
		_, err = io.ReadFull(c.br, name)
		c.name = string(name)
		return err
	case rfb.EncodingQEMUExtendedKey:
		return nil
	case rfb.EncodingCursor:
		return c.readCursor(r)
	}
	if !r.In(c.fb.Bounds()) {
		return fmt.Errorf("outside the %dx%d screen", c.w, c.h)
	}
	switch e {
	case rfb.EncodingRaw:
		for y := r.Y; y < r.Y+r.H; y++ {
			for x := r.X; x < r.X+r.W; x++ {
				v, err := c.pixel(c.br, c.pf.BytesPerPixel())
				if err != nil {
					return err
				}
				c.put(x, y, v)
			}
		}
		return nil
	case rfb.EncodingCopyRect:
		var b [4]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return err
		}
		sx, sy := int(binary.BigEndian.Uint16(b[0:])), int(binary.BigEndian.Uint16(b[2:]))
		c.fb.Move(framebuffer.Rect{X: sx, Y: sy, W: r.W, H: r.H}, r.X, r.Y)
		return nil
	case rfb.EncodingHextile:
		return c.hextile(r)
	case rfb.EncodingZRLE:
		return c.zrle(r)
	}
	return fmt.Errorf("unknown encoding")
}

// pixel reads one wire pixel value of n bytes.
func (c *testClient) pixel(r io.Reader, n int) (uint32, error) {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:n]); err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint32(b[0]), nil
	case 2:
		if c.pf.BigEndian {
			return uint32(binary.BigEndian.Uint16(b[:])), nil
		}
		return uint32(binary.LittleEndian.Uint16(b[:])), nil
	}
	if c.pf.BigEndian {
		return binary.BigEndian.Uint32(b[:]), nil
	}
	return binary.LittleEndian.Uint32(b[:]), nil
}

// rgba turns a wire pixel value into canvas RGBA.
func (c *testClient) rgba(v uint32) [4]byte {
	comp := func(max uint16, shift uint8) byte {
		q := (v >> shift) & uint32(max)
		return byte((q*255 + uint32(max)/2) / uint32(max))
	}
	return [4]byte{comp(c.pf.RedMax, c.pf.RedShift), comp(c.pf.GreenMax, c.pf.GreenShift), comp(c.pf.BlueMax, c.pf.BlueShift), 255}
}

func (c *testClient) put(x, y int, v uint32) {
	p := c.rgba(v)
	copy(c.fb.Pix[c.fb.Offset(x, y):], p[:])
}

func (c *testClient) fill(r framebuffer.Rect, v uint32) {
	for y := r.Y; y < r.Y+r.H; y++ {
		for x := r.X; x < r.X+r.W; x++ {
			c.put(x, y, v)
		}
	}
}

func (c *testClient) readCursor(r framebuffer.Rect) error {
	c.cursorSet = true
	if r.W == 0 || r.H == 0 {
		c.cursor = nil
		return nil
	}
	cur := &framebuffer.Cursor{W: r.W, H: r.H, HotX: r.X, HotY: r.Y, Pix: make([]byte, 4*r.W*r.H)}
	for i := 0; i < r.W*r.H; i++ {
		v, err := c.pixel(c.br, c.pf.BytesPerPixel())
		if err != nil {
			return err
		}
		p := c.rgba(v)
		copy(cur.Pix[4*i:], p[:3])
	}
	stride := (r.W + 7) / 8
	mask := make([]byte, stride*r.H)
	if _, err := io.ReadFull(c.br, mask); err != nil {
		return err
	}
	for y := 0; y < r.H; y++ {
		for x := 0; x < r.W; x++ {
			if mask[y*stride+x/8]&(0x80>>(x%8)) != 0 {
				cur.Pix[4*(y*r.W+x)+3] = 255
			}
		}
	}
	c.cursor = cur
	return nil
}

func (c *testClient) hextile(r framebuffer.Rect) error {
	bpp := c.pf.BytesPerPixel()
	var bg, fg uint32
	for ty := r.Y; ty < r.Y+r.H; ty += 16 {
		for tx := r.X; tx < r.X+r.W; tx += 16 {
			t := framebuffer.Rect{X: tx, Y: ty, W: min(16, r.X+r.W-tx), H: min(16, r.Y+r.H-ty)}
			mask, err := c.br.ReadByte()
			if err != nil {
				return err
			}
			if mask&hextileRaw != 0 {
				for y := t.Y; y < t.Y+t.H; y++ {
					for x := t.X; x < t.X+t.W; x++ {
						v, err := c.pixel(c.br, bpp)
						if err != nil {
							return err
						}
						c.put(x, y, v)
					}
				}
				continue
			}
			if mask&hextileBackground != 0 {
				if bg, err = c.pixel(c.br, bpp); err != nil {
					return err
				}
			}
			c.fill(t, bg)
			if mask&hextileForeground != 0 {
				if fg, err = c.pixel(c.br, bpp); err != nil {
					return err
				}
			}
			if mask&hextileAnySubrect == 0 {
				continue
			}
			n, err := c.br.ReadByte()
			if err != nil {
				return err
			}
			for i := 0; i < int(n); i++ {
				col := fg
				if mask&hextileColoured != 0 {
					if col, err = c.pixel(c.br, bpp); err != nil {
						return err
					}
				}
				var b [2]byte
				if _, err := io.ReadFull(c.br, b[:]); err != nil {
					return err
				}
				s := framebuffer.Rect{X: t.X + int(b[0]>>4), Y: t.Y + int(b[0]&15), W: int(b[1]>>4) + 1, H: int(b[1]&15) + 1}
				if !s.In(t) {
					return fmt.Errorf("hextile subrect %v outside tile %v", s, t)
				}
				c.fill(s, col)
			}
		}
	}
	return nil
}

func (c *testClient) zrle(r framebuffer.Rect) error {
	n, err := c.u32()
	if err != nil {
		return err
	}
	if _, err := io.CopyN(&c.zbuf, c.br, int64(n)); err != nil {
		return err
	}
	if c.zr == nil {
		if c.zr, err = zlib.NewReader(&c.zbuf); err != nil {
			return err
		}
	}
	z := c.zr
	cpx := c.pf.BytesPerPixel()
	high := false
	if c.pf.BitsPerPixel == 32 && c.pf.Depth <= 24 {
		m := uint32(c.pf.RedMax)<<c.pf.RedShift | uint32(c.pf.GreenMax)<<c.pf.GreenShift | uint32(c.pf.BlueMax)<<c.pf.BlueShift
		if m&0xff000000 == 0 {
			cpx = 3
		} else if m&0xff == 0 {
			cpx, high = 3, true
		}
	}
	readC := func() (uint32, error) {
		if cpx != 3 {
			return c.pixel(z, cpx)
		}
		var b [3]byte
		if _, err := io.ReadFull(z, b[:]); err != nil {
			return 0, err
		}
		switch {
		case c.pf.BigEndian && !high:
			return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]), nil
		case c.pf.BigEndian:
			return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8, nil
		case !high:
			return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16, nil
		}
		return uint32(b[0])<<8 | uint32(b[1])<<16 | uint32(b[2])<<24, nil
	}
	readByte := func() (byte, error) {
		var b [1]byte
		_, err := io.ReadFull(z, b[:])
		return b[0], err
	}
	runLen := func() (int, error) {
		l := 1
		for {
			b, err := readByte()
			if err != nil {
				return 0, err
			}
			l += int(b)
			if b != 255 {
				return l, nil
			}
		}
	}
	for ty := r.Y; ty < r.Y+r.H; ty += 64 {
		for tx := r.X; tx < r.X+r.W; tx += 64 {
			t := framebuffer.Rect{X: tx, Y: ty, W: min(64, r.X+r.W-tx), H: min(64, r.Y+r.H-ty)}
			sub, err := readByte()
			if err != nil {
				return err
			}
			var pal []uint32
			np := int(sub & 127)
			for i := 0; i < np; i++ {
				v, err := readC()
				if err != nil {
					return err
				}
				pal = append(pal, v)
			}
			i := 0
			set := func(v uint32) {
				c.put(t.X+i%t.W, t.Y+i/t.W, v)
				i++
			}
			switch {
			case sub == 0:
				for i < t.W*t.H {
					v, err := readC()
					if err != nil {
						return err
					}
					set(v)
				}
			case sub == 1:
				c.fill(t, pal[0])
			case sub <= 16:
				bits := 4
				if np <= 2 {
					bits = 1
				} else if np <= 4 {
					bits = 2
				}
				for y := 0; y < t.H; y++ {
					var cur byte
					nb := 0
					for x := 0; x < t.W; x++ {
						if nb == 0 {
							if cur, err = readByte(); err != nil {
								return err
							}
							nb = 8
						}
						idx := int(cur >> (8 - bits))
						cur <<= bits
						nb -= bits
						if idx >= np {
							return fmt.Errorf("packed index %d of %d", idx, np)
						}
						c.put(t.X+x, t.Y+y, pal[idx])
					}
				}
			case sub == 128:
				for i < t.W*t.H {
					v, err := readC()
					if err != nil {
						return err
					}
					l, err := runLen()
					if err != nil {
						return err
					}
					if i+l > t.W*t.H {
						return fmt.Errorf("run overflows tile")
					}
					for ; l > 0; l-- {
						set(v)
					}
				}
			case sub >= 130:
				for i < t.W*t.H {
					b, err := readByte()
					if err != nil {
						return err
					}
					l := 1
					if b&128 != 0 {
						if l, err = runLen(); err != nil {
							return err
						}
					}
					idx := int(b & 127)
					if idx >= np || i+l > t.W*t.H {
						return fmt.Errorf("bad palette run")
					}
					for ; l > 0; l-- {
						set(pal[idx])
					}
				}
			default:
				return fmt.Errorf("bad zrle subencoding %d", sub)
			}
		}
	}
	return nil
}
