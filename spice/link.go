// Package spice is a native SPICE client: it links the main, display, inputs
// and cursor channels of a SPICE server (QEMU, oVirt, Proxmox) over TCP or
// TLS (a channel the server refuses in plain text is linked again on its
// TLS port), decodes the display channel's drawing commands and images
// (bitmap, LZ, QUIC, LZ4, JPEG, JPEG_ALPHA) into a private canvas,
// publishes the damage to a shared framebuffer, and sends keys and pointer
// events back. A live migration of the machine is followed by linking
// again to the server it moved to.
//
// Each channel has one goroutine that owns its socket's reads; writes are
// serialised by the channel's write mutex. The display goroutine owns the
// surfaces, the image caches and the canvas it publishes from.
package spice

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Channel types (SPICE_CHANNEL_*).
const (
	ChannelMain     = 1
	ChannelDisplay  = 2
	ChannelInputs   = 3
	ChannelCursor   = 4
	ChannelPlayback = 5
	ChannelRecord   = 6
)

// channelName returns a channel type's name for logs and errors.
func channelName(t uint8) string {
	switch t {
	case ChannelMain:
		return "main"
	case ChannelDisplay:
		return "display"
	case ChannelInputs:
		return "inputs"
	case ChannelCursor:
		return "cursor"
	case ChannelPlayback:
		return "playback"
	case ChannelRecord:
		return "record"
	}
	return fmt.Sprintf("channel-type-%d", t)
}

// Link protocol constants.
const (
	linkMagic        = 0x51444552 // "REDQ" read as a little-endian uint32
	versionMajor     = 2
	versionMinor     = 2
	linkHeaderSize   = 16
	linkMessSize     = 18
	pubKeySize       = 162 // SPICE_TICKET_PUBKEY_BYTES: DER SubjectPublicKeyInfo of RSA-1024
	ticketSize       = 128
	maxLinkReplySize = 64 << 10
	// MaxPasswordLength is the longest ticket a SPICE server accepts.
	MaxPasswordLength = 60
)

// Common capabilities (SPICE_COMMON_CAP_*).
const (
	capAuthSelection = 0
	capAuthSpice     = 1
	capAuthSASL      = 2
	capMiniHeader    = 3
)

// LinkErr is a SpiceLinkErr value: why a server refused to link a channel.
type LinkErr uint32

// SpiceLinkErr values.
const (
	LinkOK LinkErr = iota
	LinkErrError
	LinkErrInvalidMagic
	LinkErrInvalidData
	LinkErrVersionMismatch
	LinkErrNeedSecured
	LinkErrNeedUnsecured
	LinkErrPermissionDenied
	LinkErrBadConnectionID
	LinkErrChannelNotAvailable
)

var linkErrText = [...]string{
	LinkOK:                     "ok",
	LinkErrError:               "general error",
	LinkErrInvalidMagic:        "invalid magic (not a SPICE server, or a TLS port)",
	LinkErrInvalidData:         "invalid data",
	LinkErrVersionMismatch:     "protocol version mismatch",
	LinkErrNeedSecured:         "the server requires TLS for this channel (use its tls-port)",
	LinkErrNeedUnsecured:       "the server requires a plain (non-TLS) connection for this channel",
	LinkErrPermissionDenied:    "permission denied (wrong or expired password)",
	LinkErrBadConnectionID:     "bad connection id (the session ended)",
	LinkErrChannelNotAvailable: "channel not available",
}

func (e LinkErr) String() string {
	if int(e) < len(linkErrText) {
		return linkErrText[e]
	}
	return fmt.Sprintf("unknown link error %d", uint32(e))
}

// LinkError is returned when the server refuses a channel link.
type LinkError struct {
	Channel string
	Code    LinkErr
}

func (e *LinkError) Error() string {
	return fmt.Sprintf("spice: %s channel link refused: %s", e.Channel, e.Code)
}

// ErrPermissionDenied is matched (errors.Is) by a LinkError whose code is
// LinkErrPermissionDenied: the password was wrong.
var ErrPermissionDenied = errors.New("spice: permission denied")

// Is lets errors.Is(err, ErrPermissionDenied) recognise a refused ticket.
func (e *LinkError) Is(target error) bool {
	return target == ErrPermissionDenied && e.Code == LinkErrPermissionDenied
}

// FormatError says that the server sent bytes that break the protocol.
type FormatError string

func (e FormatError) Error() string { return "spice: invalid data: " + string(e) }

// linkParams is what the client offers when linking one channel.
type linkParams struct {
	connID     uint32
	chType     uint8
	chID       uint8
	commonCaps []uint32
	chanCaps   []uint32
	password   string
}

// linkResult is what the server answered.
type linkResult struct {
	commonCaps []uint32
	chanCaps   []uint32
	mini       bool // both sides use the mini data header
}

// hasCap reports whether bit n is set in caps.
func hasCap(caps []uint32, n int) bool {
	i := n / 32
	return i < len(caps) && caps[i]&(1<<(n%32)) != 0
}

// capBits returns a capability word list with the given bits set.
func capBits(bits ...int) []uint32 {
	var caps []uint32
	for _, b := range bits {
		for len(caps) <= b/32 {
			caps = append(caps, 0)
		}
		caps[b/32] |= 1 << (b % 32)
	}
	return caps
}

// encodeLinkMess builds the SpiceLinkHeader and SpiceLinkMess with its
// capability words.
func encodeLinkMess(p linkParams) []byte {
	n := linkMessSize + 4*(len(p.commonCaps)+len(p.chanCaps))
	b := make([]byte, 0, linkHeaderSize+n)
	le := binary.LittleEndian
	b = le.AppendUint32(b, linkMagic)
	b = le.AppendUint32(b, versionMajor)
	b = le.AppendUint32(b, versionMinor)
	b = le.AppendUint32(b, uint32(n))
	b = le.AppendUint32(b, p.connID)
	b = append(b, p.chType, p.chID)
	b = le.AppendUint32(b, uint32(len(p.commonCaps)))
	b = le.AppendUint32(b, uint32(len(p.chanCaps)))
	b = le.AppendUint32(b, linkMessSize)
	for _, c := range p.commonCaps {
		b = le.AppendUint32(b, c)
	}
	for _, c := range p.chanCaps {
		b = le.AppendUint32(b, c)
	}
	return b
}

// linkReply is a parsed SpiceLinkReply.
type linkReply struct {
	err        LinkErr
	pubKey     []byte
	commonCaps []uint32
	chanCaps   []uint32
}

// readLinkReply reads the server's SpiceLinkHeader and SpiceLinkReply.
func readLinkReply(r io.Reader) (*linkReply, error) {
	var h [linkHeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("spice: reading link reply header: %w", err)
	}
	return parseLinkReply(h[:], r)
}

// parseLinkReply parses a link reply header already read into h and reads
// the body from r.
func parseLinkReply(h []byte, r io.Reader) (*linkReply, error) {
	le := binary.LittleEndian
	if m := le.Uint32(h); m != linkMagic {
		return nil, FormatError(fmt.Sprintf("link reply magic %#08x, want \"REDQ\" (is this a SPICE port? a TLS port needs tls-port=)", m))
	}
	if major := le.Uint32(h[4:]); major != versionMajor {
		return nil, fmt.Errorf("spice: server speaks protocol %d.%d, this client %d.%d", major, le.Uint32(h[8:]), versionMajor, versionMinor)
	}
	size := le.Uint32(h[12:])
	if size < 4 || size > maxLinkReplySize {
		return nil, FormatError(fmt.Sprintf("link reply size %d", size))
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("spice: reading link reply: %w", err)
	}
	return decodeLinkReply(body)
}

// decodeLinkReply parses the body of a SpiceLinkReply.
func decodeLinkReply(body []byte) (*linkReply, error) {
	le := binary.LittleEndian
	rep := &linkReply{err: LinkErr(le.Uint32(body))}
	if rep.err != LinkOK {
		return rep, nil
	}
	const fixed = 4 + pubKeySize + 12
	if len(body) < fixed {
		return nil, FormatError(fmt.Sprintf("link reply of %d bytes, want at least %d", len(body), fixed))
	}
	rep.pubKey = body[4 : 4+pubKeySize]
	nCommon := le.Uint32(body[4+pubKeySize:])
	nChan := le.Uint32(body[8+pubKeySize:])
	off := le.Uint32(body[12+pubKeySize:])
	if nCommon > 64 || nChan > 64 || uint64(off)+4*uint64(nCommon+nChan) > uint64(len(body)) {
		return nil, FormatError(fmt.Sprintf("link reply capabilities (%d+%d at %d) outside its %d bytes", nCommon, nChan, off, len(body)))
	}
	p := body[off:]
	for i := uint32(0); i < nCommon; i++ {
		rep.commonCaps = append(rep.commonCaps, le.Uint32(p[4*i:]))
	}
	p = p[4*nCommon:]
	for i := uint32(0); i < nChan; i++ {
		rep.chanCaps = append(rep.chanCaps, le.Uint32(p[4*i:]))
	}
	return rep, nil
}

// encryptTicket encrypts password (NUL-terminated, as SPICE servers expect)
// with the server's RSA key using OAEP with SHA-1.
func encryptTicket(pubKeyDER []byte, password string) ([]byte, error) {
	if len(password) > MaxPasswordLength {
		return nil, fmt.Errorf("spice: password longer than %d bytes", MaxPasswordLength)
	}
	key, err := x509.ParsePKIXPublicKey(pubKeyDER)
	if err != nil {
		return nil, fmt.Errorf("spice: server ticket key: %w", err)
	}
	rk, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, FormatError(fmt.Sprintf("server ticket key is %T, not RSA", key))
	}
	msg := append([]byte(password), 0)
	ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, rk, msg, nil)
	if err != nil {
		return nil, fmt.Errorf("spice: encrypting ticket: %w", err)
	}
	return ct, nil
}

// link performs the link handshake for one channel on rw: link message,
// reply, auth mechanism selection and the encrypted ticket, which is sent
// even when the server has ticketing disabled.
func link(rw io.ReadWriter, p linkParams) (*linkResult, error) {
	name := channelName(p.chType)
	if _, err := rw.Write(encodeLinkMess(p)); err != nil {
		return nil, fmt.Errorf("spice: %s link: %w", name, err)
	}
	rep, err := readLinkReply(rw)
	if err != nil {
		return nil, fmt.Errorf("%s link: %w", name, err)
	}
	if rep.err != LinkOK {
		return nil, &LinkError{Channel: name, Code: rep.err}
	}
	ticket, err := encryptTicket(rep.pubKey, p.password)
	if err != nil {
		return nil, err
	}
	var out []byte
	if hasCap(rep.commonCaps, capAuthSelection) {
		if !hasCap(rep.commonCaps, capAuthSpice) {
			return nil, fmt.Errorf("spice: %s link: the server offers only SASL authentication, which this client does not support", name)
		}
		out = binary.LittleEndian.AppendUint32(out, capAuthSpice)
	}
	out = append(out, ticket...)
	if _, err := rw.Write(out); err != nil {
		return nil, fmt.Errorf("spice: %s link: sending ticket: %w", name, err)
	}
	var res [4]byte
	if _, err := io.ReadFull(rw, res[:]); err != nil {
		return nil, fmt.Errorf("spice: %s link: reading ticket result: %w", name, err)
	}
	if code := LinkErr(binary.LittleEndian.Uint32(res[:])); code != LinkOK {
		return nil, &LinkError{Channel: name, Code: code}
	}
	return &linkResult{
		commonCaps: rep.commonCaps,
		chanCaps:   rep.chanCaps,
		mini:       hasCap(rep.commonCaps, capMiniHeader) && hasCap(p.commonCaps, capMiniHeader),
	}, nil
}
