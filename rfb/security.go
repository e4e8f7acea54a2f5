package rfb

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Security types (RFB "security-type" numbers).
const (
	secInvalid  = 0
	secNone     = 1
	secVNCAuth  = 2
	secVeNCrypt = 19
)

// VeNCrypt subtypes.
const (
	vencryptPlain     = 256
	vencryptTLSNone   = 257
	vencryptTLSVnc    = 258
	vencryptTLSPlain  = 259
	vencryptX509None  = 260
	vencryptX509Vnc   = 261
	vencryptX509Plain = 262
)

func securityName(t uint32) string {
	switch t {
	case secNone:
		return "None"
	case secVNCAuth:
		return "VncAuth"
	case secVeNCrypt:
		return "VeNCrypt"
	case 5, 6, 13, 129, 130, 133:
		return fmt.Sprintf("RSA-AES(%d)", t)
	case 16:
		return "Tight"
	case 18:
		return "TLS"
	case 20:
		return "SASL"
	case 30:
		return "Apple DH(30)"
	case vencryptPlain:
		return "Plain"
	case vencryptTLSNone:
		return "TLSNone"
	case vencryptTLSVnc:
		return "TLSVnc"
	case vencryptTLSPlain:
		return "TLSPlain"
	case vencryptX509None:
		return "X509None"
	case vencryptX509Vnc:
		return "X509Vnc"
	case vencryptX509Plain:
		return "X509Plain"
	case 263:
		return "TLSSASL"
	case 264:
		return "X509SASL"
	}
	return fmt.Sprintf("type %d", t)
}

func securityNames(ts []uint32) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = securityName(t)
	}
	return strings.Join(names, ", ")
}

// AuthError reports that the server rejected the client's credentials (or
// that credentials it requires were not given). Reason is the server's own
// text, verbatim, when it sent one.
type AuthError struct {
	Security string // the security type used, e.g. "VncAuth"
	Reason   string // the server's reason, verbatim; may be empty
	// TooMany is set when the server reported too many failed attempts.
	TooMany bool
}

func (e *AuthError) Error() string {
	msg := "rfb: authentication failed"
	if e.Security != "" {
		msg += " (" + e.Security + ")"
	}
	if e.Reason != "" {
		return msg + ": " + e.Reason
	}
	if e.TooMany {
		return msg + ": too many attempts"
	}
	return msg + ": wrong password?"
}

// RefusedError reports that the server refused the connection before any
// authentication, with its reason (e.g. "Too many security failures").
type RefusedError struct {
	Reason string // the server's reason, verbatim
}

func (e *RefusedError) Error() string {
	return "rfb: server refused the connection: " + e.Reason
}

// ProtocolError reports bytes from the server that break the RFB protocol,
// or a server that needs something kvmgate does not implement.
type ProtocolError struct {
	Msg string
}

func (e *ProtocolError) Error() string { return "rfb: " + e.Msg }

func protoErr(format string, args ...any) error {
	return &ProtocolError{Msg: fmt.Sprintf(format, args...)}
}

// readString reads a U32 length and that many bytes, up to max, as text:
// UTF-8 if it is valid UTF-8, else Latin-1.
func (r *reader) readString(max int, what string) (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", fmt.Errorf("rfb: reading %s length: %w", what, err)
	}
	if n > uint32(max) {
		return "", protoErr("%s of %d bytes exceeds the limit of %d", what, n, max)
	}
	b, err := r.readN(int(n), max)
	if err != nil {
		return "", fmt.Errorf("rfb: reading %s: %w", what, err)
	}
	return decodeText(b), nil
}

// decodeText returns b as a string: UTF-8 if valid, otherwise Latin-1.
func decodeText(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return latin1ToString(b)
}

func latin1ToString(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/4)
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

// readReason reads a failure reason string.
func (c *Client) readReason() (string, error) {
	return c.r.readString(maxReasonLength, "failure reason")
}

// negotiateSecurity runs the security handshake for the negotiated version.
func (c *Client) negotiateSecurity() error {
	if c.version == "3.3" {
		t, err := c.r.u32()
		if err != nil {
			return fmt.Errorf("rfb: reading security type: %w", err)
		}
		switch t {
		case secInvalid:
			reason, err := c.readReason()
			if err != nil {
				return err
			}
			return &RefusedError{Reason: reason}
		case secNone, secVNCAuth:
		default:
			return protoErr("RFB 3.3 server chose unsupported security type %s", securityName(t))
		}
		if t == secVNCAuth && c.opts.Password == "" {
			return &AuthError{Security: "VncAuth", Reason: "the server requires a password and none was given"}
		}
		return c.runSecurity(t)
	}

	n, err := c.r.u8()
	if err != nil {
		return fmt.Errorf("rfb: reading security types: %w", err)
	}
	if n == 0 {
		reason, err := c.readReason()
		if err != nil {
			return err
		}
		return &RefusedError{Reason: reason}
	}
	b, err := c.r.readN(int(n), 255)
	if err != nil {
		return fmt.Errorf("rfb: reading security types: %w", err)
	}
	offered := make([]uint32, n)
	for i, t := range b {
		offered[i] = uint32(t)
	}
	t, err := c.chooseSecurity(offered)
	if err != nil {
		return err
	}
	if err := c.send([]byte{byte(t)}); err != nil {
		return err
	}
	return c.runSecurity(t)
}

// wantTLS reports whether the caller configured TLS and so prefers VeNCrypt.
func (c *Client) wantTLS() bool { return c.opts.TLSConfig != nil || c.opts.TLSInsecure }

// chooseSecurity picks a security type from the server's list. Without TLS
// options it prefers None and VncAuth over VeNCrypt (whose certificate would
// most often fail verification); with them, VeNCrypt comes first.
func (c *Client) chooseSecurity(offered []uint32) (uint32, error) {
	prefs := []uint32{secNone, secVNCAuth, secVeNCrypt}
	if c.wantTLS() {
		prefs = []uint32{secVeNCrypt, secNone, secVNCAuth}
	}
	for _, p := range prefs {
		if !slices.Contains(offered, p) {
			continue
		}
		if p == secVNCAuth && c.opts.Password == "" {
			if slices.Contains(offered, secVeNCrypt) {
				continue
			}
			return 0, &AuthError{Security: "VncAuth", Reason: "the server requires a password and none was given"}
		}
		return p, nil
	}
	return 0, protoErr("no supported security type: server offers %s; kvmgate supports None, VncAuth and VeNCrypt", securityNames(offered))
}

// runSecurity performs the chosen security type and reads SecurityResult.
func (c *Client) runSecurity(t uint32) error {
	c.security = securityName(t)
	switch t {
	case secNone:
		if c.version == "3.8" {
			return c.securityResult()
		}
		return nil
	case secVNCAuth:
		if err := c.vncAuth(); err != nil {
			return err
		}
		return c.securityResult()
	case secVeNCrypt:
		return c.veNCrypt()
	}
	return protoErr("unsupported security type %s", securityName(t))
}

// vncAuth answers the VNC authentication challenge.
func (c *Client) vncAuth() error {
	var challenge [16]byte
	if err := c.r.full(challenge[:]); err != nil {
		return fmt.Errorf("rfb: reading VNC authentication challenge: %w", err)
	}
	resp := vncAuthResponse(c.opts.Password, challenge)
	return c.send(resp[:])
}

// securityResult reads the SecurityResult word and, on failure, the reason.
func (c *Client) securityResult() error {
	var b [4]byte
	if err := c.r.full(b[:]); err != nil {
		return fmt.Errorf("rfb: reading security result: %w", err)
	}
	switch status := binary.BigEndian.Uint32(b[:]); status {
	case 0:
		return nil
	case 1, 2:
		e := &AuthError{Security: c.security, TooMany: status == 2}
		if c.version == "3.8" {
			reason, err := c.readReason()
			if err != nil {
				return fmt.Errorf("%w (reason unreadable: %v)", e, err)
			}
			e.Reason = reason
		}
		return e
	default:
		return protoErr("bad security result %d", status)
	}
}
