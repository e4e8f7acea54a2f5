package rfb

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"kvmgate/framebuffer"
)

// handshake runs ProtocolVersion, security, ClientInit/ServerInit and sends
// the initial SetPixelFormat and SetEncodings.
func (c *Client) handshake(ctx context.Context) error {
	if err := c.negotiateVersion(); err != nil {
		return err
	}
	if err := c.negotiateSecurity(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	shared := byte(1)
	if c.opts.Exclusive {
		shared = 0
	}
	if err := c.send([]byte{shared}); err != nil {
		return err
	}
	if err := c.serverInit(); err != nil {
		return err
	}
	return c.setup()
}

// parseVersion parses a 12-byte ProtocolVersion message.
func parseVersion(b []byte) (major, minor int, ok bool) {
	if len(b) != 12 || string(b[:4]) != "RFB " || b[7] != '.' || b[11] != '\n' {
		return 0, 0, false
	}
	ma, err1 := strconv.Atoi(string(b[4:7]))
	mi, err2 := strconv.Atoi(string(b[8:11]))
	if err1 != nil || err2 != nil || ma < 0 || mi < 0 {
		return 0, 0, false
	}
	return ma, mi, true
}

// clientVersion maps a server's version to the one kvmgate answers with:
// 3.3 for 3.3–3.6 (3.5 was wrongly sent by some clients and 3.6 by some
// servers), 3.7, and 3.8 for 3.8 and every later banner (Apple's 3.889,
// Intel AMT's 4.0, RealVNC's 4.1 and 5.0 all speak 3.8 to a 3.8 client).
func clientVersion(major, minor int) (string, bool) {
	switch {
	case major == 3 && minor >= 3 && minor < 7:
		return "3.3", true
	case major == 3 && minor == 7:
		return "3.7", true
	case major == 3 && minor >= 8, major > 3:
		return "3.8", true
	}
	return "", false
}

func (c *Client) negotiateVersion() error {
	var b [12]byte
	if err := c.r.full(b[:]); err != nil {
		return fmt.Errorf("rfb: reading server version: %w", err)
	}
	major, minor, ok := parseVersion(b[:])
	if !ok {
		return protoErr("not an RFB server: it sent %q", string(b[:]))
	}
	c.banner = strings.TrimSpace(string(b[:]))
	v, ok := clientVersion(major, minor)
	if !ok {
		return protoErr("unsupported server version %d.%d", major, minor)
	}
	c.version = v
	msg := "RFB 003.008\n"
	switch v {
	case "3.3":
		msg = "RFB 003.003\n"
	case "3.7":
		msg = "RFB 003.007\n"
	}
	return c.send([]byte(msg))
}

// serverInit reads ServerInit and checks its size and name against limits.
func (c *Client) serverInit() error {
	var b [20]byte
	if err := c.r.full(b[:]); err != nil {
		return fmt.Errorf("rfb: reading ServerInit: %w", err)
	}
	w, h := int(b[0])<<8|int(b[1]), int(b[2])<<8|int(b[3])
	if err := c.checkSize(w, h); err != nil {
		return err
	}
	c.serverPF = UnmarshalPixelFormat(b[4:20])
	name, err := c.r.readString(maxNameLength, "desktop name")
	if err != nil {
		return err
	}
	c.initW, c.initH = w, h
	c.width, c.height = w, h
	c.name = name
	return nil
}

// checkSize rejects framebuffer sizes beyond the framebuffer package's and
// the caller's limits.
func (c *Client) checkSize(w, h int) error {
	if err := framebuffer.CheckSize(w, h); err != nil {
		return &ProtocolError{Msg: "server framebuffer: " + err.Error()}
	}
	if (c.opts.MaxWidth > 0 && w > c.opts.MaxWidth) || (c.opts.MaxHeight > 0 && h > c.opts.MaxHeight) {
		return protoErr("server framebuffer %dx%d exceeds the configured maximum %dx%d", w, h, c.opts.MaxWidth, c.opts.MaxHeight)
	}
	return nil
}

// setup chooses the pixel format and sends SetPixelFormat and SetEncodings.
func (c *Client) setup() error {
	switch {
	case c.opts.ServerFormat:
		c.pf = c.serverPF
	case c.opts.PixelFormat != nil:
		c.pf = *c.opts.PixelFormat
	default:
		c.pf = NativeFormat
	}
	if err := c.pf.Validate(); err != nil {
		if c.opts.ServerFormat {
			return &ProtocolError{Msg: "server pixel format " + c.serverPF.String() + ": " + err.Error()}
		}
		return fmt.Errorf("rfb: requested pixel format: %w", err)
	}
	var msgs []byte
	if !c.opts.ServerFormat {
		msgs = appendSetPixelFormat(msgs, c.pf)
	}
	c.encs = c.encodingList()
	msgs = appendSetEncodings(msgs, c.encs)
	return c.send(msgs)
}

// encodingList returns the caller's pixel encodings that have a decoder, in
// order, followed by the pseudo-encodings kvmgate understands.
func (c *Client) encodingList() []Encoding {
	want := c.opts.Encodings
	if want == nil {
		want = DefaultEncodings
	}
	var list []Encoding
	seen := map[Encoding]bool{}
	for _, e := range want {
		if !seen[e] && SupportedEncoding(e) {
			seen[e] = true
			list = append(list, e)
		}
	}
	if q := c.opts.QualityLevel; q >= 0 && q <= 9 {
		list = append(list, EncodingJPEGQuality0+Encoding(q))
	}
	if l := c.opts.CompressLevel; l >= 0 && l <= 9 {
		list = append(list, EncodingCompressLevel0+Encoding(l))
	}
	return append(list, pseudoEncodings...)
}
