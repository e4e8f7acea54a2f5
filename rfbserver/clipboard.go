package rfbserver

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// Extended Clipboard (pseudo-encoding 0xC0A1E5CE): cut-text messages with a
// negative length carry a flags word (formats in the low 16 bits, one
// action in the high 8) and, for provide, a zlib stream of length-prefixed,
// NUL-terminated UTF-8 texts with CRLF line ends. Only the text format is
// supported, which is all noVNC and TigerVNC exchange in practice.

// Extended clipboard flags.
const (
	clipText    = 1 << 0
	clipCaps    = 1 << 24
	clipRequest = 1 << 25
	clipPeek    = 1 << 26
	clipNotify  = 1 << 27
	clipProvide = 1 << 28

	clipActions  = 0xff000000
	clipOurFlags = clipCaps | clipRequest | clipPeek | clipNotify | clipProvide | clipText
)

// clipRequests is what the reader asks the sender to send, guarded by
// conn.mu.
type clipRequests struct {
	caps    uint32 // the client's caps message flags
	capsSet bool
	request bool // the client has text for us: ask for it
	provide bool // the client asked for the console's text
	notify  bool // the client peeked: tell it whether we have text
}

// readExtendedClipboard reads an extended ClientCutText of n bytes.
func (c *conn) readExtendedClipboard(n int64) error {
	if n < 4 {
		return protocolErrorf("extended ClientCutText of %d bytes", n)
	}
	if limit := int64(c.s.maxCutText()) + 1<<16; n > limit {
		return protocolErrorf("extended ClientCutText of %d bytes (limit %d)", n, limit)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c.br, b); err != nil {
		return readErr("ClientCutText", err)
	}
	flags := binary.BigEndian.Uint32(b)
	text := flags&clipText != 0
	c.mu.Lock()
	switch {
	case flags&clipCaps != 0:
		c.clip.caps, c.clip.capsSet = flags, true
	case flags&clipRequest != 0 && text:
		c.clip.provide = true
	case flags&clipPeek != 0:
		c.clip.notify = true
	case flags&clipNotify != 0 && text:
		c.clip.request = true
	}
	c.mu.Unlock()
	c.signal()
	if flags&clipActions == clipProvide && text {
		s, err := inflateClipText(b[4:], c.s.maxCutText())
		if err != nil {
			return &ProtocolError{Msg: err.Error()}
		}
		c.input("clipboard", func(in InputSink) error { return in.Clipboard(s) })
	}
	return nil
}

// inflateClipText decodes the text of a provide message's zlib stream,
// refusing more than limit bytes.
func inflateClipText(z []byte, limit int) (string, error) {
	zr, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		return "", fmt.Errorf("extended clipboard provide: %w", err)
	}
	defer zr.Close()
	var n [4]byte
	if _, err := io.ReadFull(zr, n[:]); err != nil {
		return "", fmt.Errorf("extended clipboard provide: %w", err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if int64(size) > int64(limit)+1 {
		return "", fmt.Errorf("extended clipboard text of %d bytes (limit %d)", size, limit)
	}
	text := make([]byte, size)
	if _, err := io.ReadFull(zr, text); err != nil {
		return "", fmt.Errorf("extended clipboard provide: %w", err)
	}
	s := strings.TrimRight(string(text), "\x00")
	return strings.ReplaceAll(s, "\r\n", "\n"), nil
}

// appendExtClip appends an extended ServerCutText with the given flags and
// payload.
func appendExtClip(dst []byte, flags uint32, payload []byte) []byte {
	dst = append(dst, msgServerCutText, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(-int32(4+len(payload))))
	dst = binary.BigEndian.AppendUint32(dst, flags)
	return append(dst, payload...)
}

// clipProvidePayload returns the zlib stream of a provide message for text.
func clipProvidePayload(text string, limit int) ([]byte, error) {
	t := strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\n", "\r\n")
	if len(t) > limit {
		t = truncateUTF8(t, limit)
	}
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(t)+1))
	zw.Write(n[:])
	zw.Write([]byte(t))
	if _, err := zw.Write([]byte{0}); err != nil {
		return nil, fmt.Errorf("rfbserver: extended clipboard: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("rfbserver: extended clipboard: %w", err)
	}
	return buf.Bytes(), nil
}

// truncateUTF8 cuts s to at most n bytes at a character boundary.
func truncateUTF8(s string, n int) string {
	for n > 0 && n < len(s) && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}
