package rfb

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
)

// veNCrypt runs the VeNCrypt (version 0.2) security type: version and
// subtype negotiation, the TLS handshake for X509 subtypes, then the inner
// authentication and SecurityResult.
func (c *Client) veNCrypt() error {
	var v [2]byte
	if err := c.r.full(v[:]); err != nil {
		return fmt.Errorf("rfb: reading VeNCrypt version: %w", err)
	}
	if v[0] != 0 || v[1] < 2 {
		return protoErr("VeNCrypt version %d.%d not supported (need 0.2)", v[0], v[1])
	}
	if err := c.send([]byte{0, 2}); err != nil {
		return err
	}
	ack, err := c.r.u8()
	if err != nil {
		return fmt.Errorf("rfb: reading VeNCrypt version ack: %w", err)
	}
	if ack != 0 {
		return protoErr("server rejected VeNCrypt version 0.2")
	}
	n, err := c.r.u8()
	if err != nil {
		return fmt.Errorf("rfb: reading VeNCrypt subtypes: %w", err)
	}
	if n == 0 {
		return protoErr("server offers no VeNCrypt subtypes")
	}
	b, err := c.r.readN(4*int(n), 4*255)
	if err != nil {
		return fmt.Errorf("rfb: reading VeNCrypt subtypes: %w", err)
	}
	offered := make([]uint32, n)
	for i := range offered {
		offered[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	sub, err := c.chooseVeNCrypt(offered)
	if err != nil {
		return err
	}
	var sel [4]byte
	binary.BigEndian.PutUint32(sel[:], sub)
	if err := c.send(sel[:]); err != nil {
		return err
	}
	c.security = "VeNCrypt " + securityName(sub)

	switch sub {
	case secNone, secVNCAuth:
		// A plain security type listed inside VeNCrypt: no TLS.
		if sub == secVNCAuth {
			if err := c.vncAuth(); err != nil {
				return err
			}
		}
		return c.securityResult()
	case vencryptPlain:
		if err := c.sendPlain(); err != nil {
			return err
		}
		return c.securityResult()
	}

	// X509 subtypes: an ack byte, then TLS.
	ack, err = c.r.u8()
	if err != nil {
		return fmt.Errorf("rfb: reading VeNCrypt subtype ack: %w", err)
	}
	if ack != 1 {
		return protoErr("server rejected VeNCrypt subtype %s", securityName(sub))
	}
	if err := c.startTLS(); err != nil {
		return err
	}
	switch sub {
	case vencryptX509Vnc:
		if err := c.vncAuth(); err != nil {
			return err
		}
	case vencryptX509Plain:
		if err := c.sendPlain(); err != nil {
			return err
		}
	}
	return c.securityResult()
}

// chooseVeNCrypt picks a subtype. Go's crypto/tls has no anonymous
// Diffie-Hellman, so the TLS* subtypes (anonymous TLS) are out of reach; a
// server offering only those gets an error that says so, unless it also
// lists a plain type.
func (c *Client) chooseVeNCrypt(offered []uint32) (uint32, error) {
	var prefs []uint32
	switch {
	case c.opts.Username != "" && c.opts.Password != "":
		prefs = []uint32{vencryptX509Plain, vencryptX509Vnc, vencryptX509None, secNone, secVNCAuth, vencryptPlain}
	case c.opts.Password != "":
		prefs = []uint32{vencryptX509Vnc, vencryptX509None, vencryptX509Plain, secNone, secVNCAuth, vencryptPlain}
	default:
		prefs = []uint32{vencryptX509None, secNone, vencryptX509Vnc, vencryptX509Plain}
	}
	for _, p := range prefs {
		if slices.Contains(offered, p) {
			return p, nil
		}
	}
	anon := slices.ContainsFunc(offered, func(t uint32) bool {
		return t == vencryptTLSNone || t == vencryptTLSVnc || t == vencryptTLSPlain
	})
	if anon {
		return 0, protoErr("server offers only anonymous-TLS VeNCrypt subtypes (%s); Go's TLS has no anonymous Diffie-Hellman, so give the server an X509 certificate (X509None/X509Vnc/X509Plain) or also allow VncAuth or None", securityNames(offered))
	}
	if c.opts.Password == "" && slices.Contains(offered, secVNCAuth) {
		return 0, &AuthError{Security: "VeNCrypt", Reason: "the server requires a password and none was given"}
	}
	return 0, protoErr("no supported VeNCrypt subtype: server offers %s", securityNames(offered))
}

// sendPlain sends the VeNCrypt Plain credentials.
func (c *Client) sendPlain() error {
	u, p := c.opts.Username, c.opts.Password
	msg := make([]byte, 8, 8+len(u)+len(p))
	binary.BigEndian.PutUint32(msg[0:], uint32(len(u)))
	binary.BigEndian.PutUint32(msg[4:], uint32(len(p)))
	msg = append(msg, u...)
	msg = append(msg, p...)
	return c.send(msg)
}

// startTLS runs the TLS handshake over the connection and makes all further
// traffic go through it.
func (c *Client) startTLS() error {
	if c.r.br.Buffered() > 0 {
		return protoErr("server sent data before the TLS handshake")
	}
	cfg := &tls.Config{}
	if c.opts.TLSConfig != nil {
		cfg = c.opts.TLSConfig.Clone()
	}
	if c.opts.TLSInsecure {
		cfg.InsecureSkipVerify = true
	}
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(c.addr); err == nil {
			cfg.ServerName = host
		}
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	tc := tls.Client(c.raw, cfg)
	// The connection's deadline (from the handshake's context) bounds this.
	if err := tc.HandshakeContext(context.Background()); err != nil {
		return fmt.Errorf("rfb: VeNCrypt TLS handshake with %s: %w", c.addr, err)
	}
	c.wmu.Lock()
	c.conn = tc
	c.wmu.Unlock()
	c.r = newReader(tc)
	return nil
}
