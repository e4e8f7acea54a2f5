package aten

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Limits on what the server may make the client hold.
const (
	maxNameLength = 64 << 10
	maxReason     = 64 << 10
)

// handshake runs the version echo, security type 16, ClientInit, ServerInit
// with its trailer, and sends SetEncodings, the mouse mode and the first
// update request.
func (c *Client) handshake() error {
	var v [12]byte
	if err := c.full(v[:]); err != nil {
		return fmt.Errorf("aten: reading server version: %w", err)
	}
	if !ValidBanner(v[:]) {
		return protoErr("not an RFB server: it sent %q", string(v[:]))
	}
	c.banner = strings.TrimSpace(string(v[:]))
	// ATEN servers want their own banner back, whatever its number
	// (HTML5 firmware sends RFB 055.008 and goes silent on 003.008).
	if err := c.send(v[:]); err != nil {
		return err
	}
	if err := c.security(); err != nil {
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
	msg := AppendSetEncodings(nil, []int32{EncodingAST2100, EncodingHermon})
	if m := c.opts.MouseMode; m != MouseKeep {
		msg = append(msg, MsgMouseSetInfo, byte(m), 0)
	}
	msg = AppendUpdateRequest(msg, false, c.initW, c.initH)
	return c.send(msg)
}

// ValidBanner reports whether b is a 12-byte RFB ProtocolVersion message
// ("RFB xxx.yyy\n" with digits).
func ValidBanner(b []byte) bool {
	if len(b) != 12 || string(b[:4]) != "RFB " || b[7] != '.' || b[11] != '\n' {
		return false
	}
	for _, i := range []int{4, 5, 6, 8, 9, 10} {
		if b[i] < '0' || b[i] > '9' {
			return false
		}
	}
	return true
}

func (c *Client) security() error {
	var n [1]byte
	if err := c.full(n[:]); err != nil {
		return fmt.Errorf("aten: reading security types: %w", err)
	}
	if n[0] == 0 {
		reason, err := c.readString(maxReason)
		if err != nil {
			return fmt.Errorf("aten: server refused the connection (reason unreadable: %w)", err)
		}
		return protoErr("server refused the connection: %s", reason)
	}
	types := make([]byte, n[0])
	if err := c.full(types); err != nil {
		return fmt.Errorf("aten: reading security types: %w", err)
	}
	found := false
	for _, t := range types {
		found = found || t == SecurityTypeATEN
	}
	if !found {
		return protoErr("server offers security types %v, not ATEN's %d: not an ATEN iKVM", types, SecurityTypeATEN)
	}
	if err := c.send([]byte{SecurityTypeATEN}); err != nil {
		return err
	}
	if err := c.full(c.blob[:]); err != nil {
		return fmt.Errorf("aten: reading the 24-byte security blob: %w", err)
	}
	c.log.Debug("aten security blob", "variant", blobVariant(c.blob[:]))
	if err := c.send(AppendCredentials(nil, c.opts.Username, c.opts.Password)); err != nil {
		return err
	}
	var res [4]byte
	if err := c.full(res[:]); err != nil {
		return fmt.Errorf("aten: reading SecurityResult (the BMC may have closed the connection over bad credentials): %w", err)
	}
	if r := binary.BigEndian.Uint32(res[:]); r != 0 {
		return fmt.Errorf("%w (SecurityResult %d)", ErrAuth, r)
	}
	return nil
}

// blobVariant names the layout of the 24-byte security blob: newer
// AST2400/AST2500 firmware starts it with a zero TightVNC tunnel count and
// a sub-auth count whose low half is 0x0100; older firmware (vnc2video's
// "aten1") sends a large number there.
func blobVariant(b []byte) string {
	if len(b) < 8 {
		return "unknown"
	}
	nt := binary.BigEndian.Uint32(b[0:4])
	sub := binary.BigEndian.Uint32(b[4:8])
	switch {
	case nt == 0 && (sub == 0 || sub&0xffff == 0x0100):
		return "tight"
	case nt&0xffff0ff0 == 0xaff90fb0 || nt > 0x1000000:
		return "aten1"
	}
	return "other"
}

func (c *Client) readString(max int) (string, error) {
	var l [4]byte
	if err := c.full(l[:]); err != nil {
		return "", err
	}
	n := binary.BigEndian.Uint32(l[:])
	if n > uint32(max) {
		return "", protoErr("%d-byte string exceeds %d", n, max)
	}
	b := make([]byte, n)
	if err := c.full(b); err != nil {
		return "", err
	}
	return string(b), nil
}

// serverInit reads ServerInit and its 12-byte trailer. The geometry and
// pixel format are placeholders; only the name and the flags are kept.
func (c *Client) serverInit() error {
	var b [20]byte
	if err := c.full(b[:]); err != nil {
		return fmt.Errorf("aten: reading ServerInit: %w", err)
	}
	c.initW, c.initH = int(binary.BigEndian.Uint16(b[0:2])), int(binary.BigEndian.Uint16(b[2:4]))
	name, err := c.readString(maxNameLength)
	if err != nil {
		return fmt.Errorf("aten: reading the desktop name: %w", err)
	}
	c.name = name
	var t [ServerInitTrailerLen]byte
	if err := c.full(t[:]); err != nil {
		return fmt.Errorf("aten: reading the ServerInit trailer: %w", err)
	}
	c.flags = ParseServerInitTrailer(t[:])
	c.viewOnly = !c.flags.KeyboardMouse
	return nil
}

// ParseServerInitTrailer reads the flags of the 12 bytes that follow the
// desktop name (8 unknown bytes, then video, keyboard/mouse, kick and
// virtual-USB enable).
func ParseServerInitTrailer(t []byte) ServerFlags {
	if len(t) < ServerInitTrailerLen {
		return ServerFlags{}
	}
	return ServerFlags{Video: t[8] != 0, KeyboardMouse: t[9] != 0, Kick: t[10] != 0, VirtualUSB: t[11] != 0}
}
