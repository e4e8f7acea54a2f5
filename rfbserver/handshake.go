package rfbserver

import (
	"bytes"
	"crypto/des"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"kvmgate/rfb"
)

// protoVersion is a negotiated RFB protocol version.
type protoVersion int

const (
	version33 protoVersion = 3
	version37 protoVersion = 7
	version38 protoVersion = 8
)

func (v protoVersion) String() string { return fmt.Sprintf("3.%d", int(v)) }

// Security types.
const (
	secInvalid = 0
	secNone    = 1
	secVNCAuth = 2
)

// serverVersion is the highest version the server offers.
const serverVersion = "RFB 003.008\n"

// handshake runs ProtocolVersion, security and initialisation, leaving the
// connection ready for normal messages.
func (c *conn) handshake() error {
	if err := c.nc.SetDeadline(time.Now().Add(c.s.handshakeTimeout())); err != nil {
		return fmt.Errorf("rfbserver: set deadline: %w", err)
	}
	if err := c.negotiateVersion(); err != nil {
		return err
	}
	if err := c.negotiateSecurity(); err != nil {
		return err
	}
	var shared [1]byte
	if _, err := io.ReadFull(c.br, shared[:]); err != nil {
		return fmt.Errorf("rfbserver: reading ClientInit: %w", err)
	}
	if shared[0] == 0 {
		c.log.Info("rfbserver: client asked for exclusive access; sharing anyway")
	}

	w, h := c.s.FB.Size()
	name := c.s.desktopName()
	b := make([]byte, 0, 24+len(name))
	b = binary.BigEndian.AppendUint16(b, uint16(w))
	b = binary.BigEndian.AppendUint16(b, uint16(h))
	b = append(b, rfb.NativeFormat.Marshal()...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(name)))
	b = append(b, name...)
	if _, err := c.nc.Write(b); err != nil {
		return fmt.Errorf("rfbserver: writing ServerInit: %w", err)
	}
	c.initW, c.initH, c.initName = w, h, name
	if err := c.nc.SetDeadline(time.Time{}); err != nil {
		return fmt.Errorf("rfbserver: clear deadline: %w", err)
	}
	return nil
}

func (c *conn) negotiateVersion() error {
	if _, err := io.WriteString(c.nc, serverVersion); err != nil {
		return fmt.Errorf("rfbserver: writing ProtocolVersion: %w", err)
	}
	var b [12]byte
	if _, err := io.ReadFull(c.br, b[:]); err != nil {
		return fmt.Errorf("rfbserver: reading ProtocolVersion: %w", err)
	}
	var major, minor int
	if n, err := fmt.Sscanf(string(b[:]), "RFB %03d.%03d\n", &major, &minor); n != 2 || err != nil || major != 3 {
		return fmt.Errorf("rfbserver: client sent bad ProtocolVersion %q", b[:])
	}
	switch {
	case minor >= 8:
		// 3.8, and later variants such as Apple's 3.889 that speak 3.8.
		c.version = version38
	case minor == 7:
		c.version = version37
	case minor >= 3:
		// 3.5 was wrongly sent by some clients and means 3.3.
		c.version = version33
	default:
		return fmt.Errorf("rfbserver: client asked for unsupported RFB 3.%d", minor)
	}
	return nil
}

func (c *conn) negotiateSecurity() error {
	want := byte(secNone)
	if c.s.Password != "" {
		want = secVNCAuth
	}
	if c.version == version33 {
		// The server decides.
		if _, err := c.nc.Write([]byte{0, 0, 0, want}); err != nil {
			return fmt.Errorf("rfbserver: writing security type: %w", err)
		}
	} else {
		if _, err := c.nc.Write([]byte{1, want}); err != nil {
			return fmt.Errorf("rfbserver: writing security types: %w", err)
		}
		var pick [1]byte
		if _, err := io.ReadFull(c.br, pick[:]); err != nil {
			return fmt.Errorf("rfbserver: reading security type: %w", err)
		}
		if pick[0] != want {
			err := fmt.Errorf("rfbserver: client picked security type %d, offered %d", pick[0], want)
			c.securityFailed("security type not offered", err)
			return err
		}
	}
	c.auth = "none"
	if want == secVNCAuth {
		c.auth = "vnc"
		if err := c.vncAuth(); err != nil {
			return err
		}
	} else if c.version != version38 {
		// 3.3 and 3.7 send no SecurityResult after None.
		return nil
	}
	if _, err := c.nc.Write([]byte{0, 0, 0, 0}); err != nil {
		return fmt.Errorf("rfbserver: writing SecurityResult: %w", err)
	}
	return nil
}

// securityFailed logs err, then sends a failed SecurityResult (with the
// reason in 3.8), so the log has the reason before the client does. Write
// errors are ignored: the connection is dropped next anyway.
func (c *conn) securityFailed(reason string, err error) {
	c.log.Warn("rfbserver: handshake failed", "err", err)
	c.failureLogged = true
	b := []byte{0, 0, 0, 1}
	if c.version == version38 {
		b = binary.BigEndian.AppendUint32(b, uint32(len(reason)))
		b = append(b, reason...)
	}
	_, _ = c.nc.Write(b)
}

// vncAuth runs VNC authentication's challenge and response.
func (c *conn) vncAuth() error {
	var challenge [16]byte
	if _, err := rand.Read(challenge[:]); err != nil {
		return fmt.Errorf("rfbserver: making challenge: %w", err)
	}
	if _, err := c.nc.Write(challenge[:]); err != nil {
		return fmt.Errorf("rfbserver: writing challenge: %w", err)
	}
	var resp [16]byte
	if _, err := io.ReadFull(c.br, resp[:]); err != nil {
		return fmt.Errorf("rfbserver: reading auth response: %w", err)
	}
	expect, err := vncAuthResponse(c.s.Password, challenge[:])
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(expect, resp[:]) != 1 {
		err := fmt.Errorf("rfbserver: VNC authentication failed: wrong password")
		c.securityFailed("authentication failed", err)
		return err
	}
	return nil
}

// vncAuthResponse encrypts challenge with DES in ECB mode, keyed with the
// password's first 8 bytes (zero padded), each byte's bits reversed as the
// protocol requires.
func vncAuthResponse(password string, challenge []byte) ([]byte, error) {
	var key [8]byte
	copy(key[:], password)
	for i, b := range key {
		key[i] = reverseBits(b)
	}
	block, err := des.NewCipher(key[:])
	if err != nil {
		return nil, fmt.Errorf("rfbserver: des: %w", err)
	}
	out := bytes.Clone(challenge)
	for i := 0; i+8 <= len(out); i += 8 {
		block.Encrypt(out[i:i+8], out[i:i+8])
	}
	return out, nil
}

func reverseBits(b byte) byte {
	b = b>>4 | b<<4
	b = (b&0xcc)>>2 | (b&0x33)<<2
	return (b&0xaa)>>1 | (b&0x55)<<1
}
