// Package rfbdecode measures how fast kvmgate's RFB decoders turn bytes
// captured from real VNC servers into pixels, side by side with
// github.com/amitbet/vnc2video on the same bytes.
//
// Only tests and benchmarks import this package (it pulls in vnc2video as a
// baseline, which the kvmgate binary must never link). The captured streams
// live in testdata/ as <name>.bin.gz files in the format described at
// Stream; the capture itself is a build-tagged test:
//
//	go test -tags capture -run '^TestCapture$' -v ./bench/rfbdecode/
//
// It starts TigerVNC's Xvnc and x11vnc at 1920×1080 with a desktop of
// xterms, clocks and a patterned root window, records the server's bytes for
// each encoding, and writes the streams and server-side screenshots.
package rfbdecode

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"io"
	"os"

	"kvmgate/framebuffer"
	"kvmgate/rfb"
)

// streamMagic is the first line of an uncompressed stream file.
const streamMagic = "KVMGATE-RFBDECODE 1\n"

// maxUpdateBytes bounds one stored update (a 1920×1080 Raw frame at 32 bpp
// is 8 MiB) so a damaged file cannot make Load allocate without limit.
const maxUpdateBytes = 64 << 20

// Stream is one captured RFB session, reduced to what a replay needs: the
// server's ServerInit, the pixel format and encodings the capturing client
// asked for, and the server's FramebufferUpdate messages, byte for byte.
//
// On disk (gzip-compressed) it is the line "KVMGATE-RFBDECODE 1", a line of
// JSON holding the Header, then a big-endian uint32 count of updates, each
// a big-endian uint32 length followed by that many bytes: one complete
// server-to-client FramebufferUpdate message starting with its type byte 0.
type Stream struct {
	Header
	// Updates are the server's FramebufferUpdate messages in the order
	// they arrived. Updates[0] answers a non-incremental request for the
	// whole screen; see Header.Follow for what a second one is.
	Updates [][]byte
}

// Header describes a Stream.
type Header struct {
	// Name is the stream's file name without extension, such as "zrle"
	// or "tight-jpeg8".
	Name string `json:"name"`
	// Workload names the screenshot (testdata/<workload>.png) that the
	// decoded stream must reproduce.
	Workload string `json:"workload"`
	// Server is the VNC server's name and version.
	Server string `json:"server"`
	// Encoding is the pixel encoding the server used for the updates.
	Encoding rfb.Encoding `json:"encoding"`
	// Encodings is the SetEncodings list the capturing client sent.
	Encodings []rfb.Encoding `json:"encodings"`
	// Width and Height are the framebuffer size from ServerInit.
	Width  int `json:"width"`
	Height int `json:"height"`
	// ServerInit is the server's ServerInit message as received: size,
	// the server's pixel format and the desktop name.
	ServerInit []byte `json:"server_init"`
	// PixelFormat is the 16-byte PIXEL_FORMAT the client set with
	// SetPixelFormat; every update is in this format.
	PixelFormat []byte `json:"pixel_format"`
	// Follow says what Updates[1:] are: "" (there are none) or
	// "incremental" (the answer to an incremental request after the screen
	// changed, such as an xterm scrolling into CopyRect).
	Follow string `json:"follow,omitempty"`
	// Stateful is set for encodings whose decoder state (zlib streams)
	// carries over between updates, so an update can only be decoded after
	// the ones before it on a fresh connection.
	Stateful bool `json:"stateful"`
	// Note is free text about how the stream was produced.
	Note string `json:"note,omitempty"`
	// Captured is when the stream was recorded (RFC 3339).
	Captured string `json:"captured"`
}

// Format returns the pixel format of the updates.
func (h *Header) Format() (rfb.PixelFormat, error) {
	if len(h.PixelFormat) != 16 {
		return rfb.PixelFormat{}, fmt.Errorf("rfbdecode: %s: pixel format of %d bytes, want 16", h.Name, len(h.PixelFormat))
	}
	return rfb.UnmarshalPixelFormat(h.PixelFormat), nil
}

// Timed returns the update a benchmark iteration decodes: the last one.
// Everything before it is decoded once, untimed, to bring the canvas into
// the state the server assumed (see Warmup).
func (s *Stream) Timed() []byte { return s.Updates[len(s.Updates)-1] }

// Warmup returns the updates a replay decodes, untimed, before Timed: the
// stream's earlier updates, or else a full-screen Raw update of the
// workload's screenshot. The warm-up brings kvmgate's client past its
// first full frame (whose coverage bookkeeping a steady-state update does
// not pay) without touching the timed encoding's zlib streams, which stay
// fresh as the server's were.
func (s *Stream) Warmup(shot *framebuffer.Canvas) ([][]byte, error) {
	if len(s.Updates) > 1 {
		return s.Updates[:len(s.Updates)-1], nil
	}
	pf, err := s.Format()
	if err != nil {
		return nil, err
	}
	if pf != rfb.NativeFormat {
		return nil, fmt.Errorf("rfbdecode: %s: warm-up frames are only made in the native format", s.Name)
	}
	if shot.W != s.Width || shot.H != s.Height {
		return nil, fmt.Errorf("rfbdecode: %s: screenshot is %dx%d, stream %dx%d", s.Name, shot.W, shot.H, s.Width, s.Height)
	}
	return [][]byte{RawUpdate(shot)}, nil
}

// RawUpdate returns a FramebufferUpdate with one Raw rectangle holding the
// whole canvas in rfb.NativeFormat (R, G, B, X bytes).
func RawUpdate(c *framebuffer.Canvas) []byte {
	u := make([]byte, 0, 16+4*c.W*c.H)
	u = append(u, 0, 0, 0, 1, 0, 0, 0, 0)
	u = binary.BigEndian.AppendUint16(u, uint16(c.W))
	u = binary.BigEndian.AppendUint16(u, uint16(c.H))
	u = binary.BigEndian.AppendUint32(u, uint32(rfb.EncodingRaw))
	for y := 0; y < c.H; y++ {
		u = append(u, c.Row(0, y, c.W)...)
	}
	return u
}

// LoadPNG reads a workload screenshot.
func LoadPNG(path string) (*framebuffer.Canvas, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("rfbdecode: %w", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("rfbdecode: %s: %w", path, err)
	}
	b := img.Bounds()
	c, err := framebuffer.NewCanvas(b.Dx(), b.Dy())
	if err != nil {
		return nil, fmt.Errorf("rfbdecode: %s: %w", path, err)
	}
	rgba := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(rgba, rgba.Rect, img, b.Min, draw.Src)
	for y := 0; y < c.H; y++ {
		row := c.Row(0, y, c.W)
		copy(row, rgba.Pix[y*rgba.Stride:y*rgba.Stride+4*c.W])
		for i := 3; i < len(row); i += 4 {
			row[i] = 255
		}
	}
	return c, nil
}

// Pixels returns the number of pixels Updates[i] paints. A full-screen
// update covers the screen; an incremental one is walked rectangle by
// rectangle, which works for the encodings whose payload size follows from
// the header (Raw and CopyRect, the ones the CopyRect capture uses).
func (s *Stream) Pixels(i int) (int, error) {
	if i < 0 || i >= len(s.Updates) {
		return 0, fmt.Errorf("rfbdecode: %s has no update %d", s.Name, i)
	}
	if i == 0 || s.Follow != "incremental" {
		return s.Width * s.Height, nil
	}
	pf, err := s.Format()
	if err != nil {
		return 0, err
	}
	n, err := walkSimple(s.Updates[i], pf.BytesPerPixel())
	if err != nil {
		return 0, fmt.Errorf("rfbdecode: %s update %d: %w", s.Name, i, err)
	}
	return n, nil
}

// walkSimple sums the areas of an update's rectangles, which must all be
// Raw or CopyRect.
func walkSimple(u []byte, bpp int) (int, error) {
	if len(u) < 4 {
		return 0, errors.New("update too short")
	}
	n := int(binary.BigEndian.Uint16(u[2:]))
	p, area := 4, 0
	for i := 0; i < n; i++ {
		if len(u)-p < 12 {
			return 0, fmt.Errorf("rectangle %d header truncated", i)
		}
		w, h := int(binary.BigEndian.Uint16(u[p+4:])), int(binary.BigEndian.Uint16(u[p+6:]))
		enc := rfb.Encoding(int32(binary.BigEndian.Uint32(u[p+8:])))
		p += 12
		switch enc {
		case rfb.EncodingRaw:
			p += w * h * bpp
		case rfb.EncodingCopyRect:
			p += 4
		default:
			return 0, fmt.Errorf("rectangle %d: cannot walk %v", i, enc)
		}
		if p > len(u) {
			return 0, fmt.Errorf("rectangle %d payload truncated", i)
		}
		area += w * h
	}
	if p != len(u) {
		return 0, fmt.Errorf("%d bytes after the last rectangle", len(u)-p)
	}
	return area, nil
}

// Save writes s to path, gzip-compressed.
func (s *Stream) Save(path string) error {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if err := s.write(zw); err != nil {
		return fmt.Errorf("rfbdecode: encode %s: %w", s.Name, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("rfbdecode: compress %s: %w", s.Name, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("rfbdecode: %w", err)
	}
	return nil
}

func (s *Stream) write(w io.Writer) error {
	hdr, err := json.Marshal(&s.Header)
	if err != nil {
		return err
	}
	b := append([]byte(streamMagic), hdr...)
	b = append(b, '\n')
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.Updates)))
	if _, err := w.Write(b); err != nil {
		return err
	}
	for _, u := range s.Updates {
		if _, err := w.Write(binary.BigEndian.AppendUint32(nil, uint32(len(u)))); err != nil {
			return err
		}
		if _, err := w.Write(u); err != nil {
			return err
		}
	}
	return nil
}

// Load reads a stream written by Save.
func Load(path string) (*Stream, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("rfbdecode: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("rfbdecode: %s: %w", path, err)
	}
	s, err := read(bufio.NewReader(zr))
	if err != nil {
		return nil, fmt.Errorf("rfbdecode: %s: %w", path, err)
	}
	return s, nil
}

var errFormat = errors.New("not a stream file")

func read(r *bufio.Reader) (*Stream, error) {
	magic := make([]byte, len(streamMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != streamMagic {
		return nil, errFormat
	}
	line, err := r.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	s := &Stream{}
	if err := json.Unmarshal(line, &s.Header); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	var n uint32
	if err := binary.Read(r, binary.BigEndian, &n); err != nil {
		return nil, fmt.Errorf("update count: %w", err)
	}
	if n == 0 || n > 64 {
		return nil, fmt.Errorf("%d updates (want 1..64)", n)
	}
	for i := 0; i < int(n); i++ {
		var l uint32
		if err := binary.Read(r, binary.BigEndian, &l); err != nil {
			return nil, fmt.Errorf("update %d length: %w", i, err)
		}
		if l < 4 || l > maxUpdateBytes {
			return nil, fmt.Errorf("update %d of %d bytes", i, l)
		}
		u := make([]byte, l)
		if _, err := io.ReadFull(r, u); err != nil {
			return nil, fmt.Errorf("update %d: %w", i, err)
		}
		if u[0] != 0 {
			return nil, fmt.Errorf("update %d starts with message type %d, want 0", i, u[0])
		}
		s.Updates = append(s.Updates, u)
	}
	if _, err := s.Format(); err != nil {
		return nil, err
	}
	return s, nil
}
