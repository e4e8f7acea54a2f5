package rfb

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Extended clipboard flags.
const (
	clipText    = 1 << 0
	clipCaps    = 1 << 24
	clipRequest = 1 << 25
	clipPeek    = 1 << 26
	clipNotify  = 1 << 27
	clipProvide = 1 << 28
)

// maxExtClipMessage bounds an extended clipboard message the client reads
// into memory; longer ones are skipped.
const maxExtClipMessage = 4 << 20

// clipState is what the server told us about its extended clipboard.
type clipState struct {
	ext       bool   // the server sent its caps: extended messages in use
	flags     uint32 // the server's caps flags (formats and actions it takes)
	textLimit uint32 // the largest text it takes unsolicited
}

// serverCutText handles ServerCutText, plain or extended.
func (s *session) serverCutText() error {
	c := s.c
	var hdr [7]byte
	if err := c.r.full(hdr[:]); err != nil {
		return fmt.Errorf("rfb: reading cut text header: %w", err)
	}
	n := int32(binary.BigEndian.Uint32(hdr[3:]))
	c.mu.Lock()
	ext := c.clip.ext
	c.mu.Unlock()
	if n < 0 {
		// The extended format; its caps message may come before we have
		// seen anything else, so a negative length alone switches it on.
		return s.extendedClipboard(int(-int64(n)))
	}
	length := int64(uint32(n))
	if !ext {
		length = int64(binary.BigEndian.Uint32(hdr[3:]))
	}
	if length > maxCutText {
		if length > maxCutDiscard {
			return protoErr("server cut text of %d bytes exceeds the limit of %d", length, maxCutDiscard)
		}
		c.log.Warn("rfb server clipboard too large; ignored", "bytes", length)
		return c.r.discard(length)
	}
	b, err := c.r.readN(int(length), maxCutText)
	if err != nil {
		return fmt.Errorf("rfb: reading cut text: %w", err)
	}
	s.fb.SetClipboard(latin1ToString(b))
	return nil
}

// extendedClipboard handles an extended ServerCutText of n bytes.
func (s *session) extendedClipboard(n int) error {
	c := s.c
	if n < 4 {
		return protoErr("extended clipboard message of %d bytes", n)
	}
	if n > maxCutDiscard {
		return protoErr("extended clipboard message of %d bytes exceeds the limit of %d", n, maxCutDiscard)
	}
	if n > maxExtClipMessage {
		c.log.Warn("rfb extended clipboard message too large; ignored", "bytes", n)
		return c.r.discard(int64(n))
	}
	b, err := c.r.readN(n, maxExtClipMessage)
	if err != nil {
		return fmt.Errorf("rfb: reading extended clipboard: %w", err)
	}
	flags := binary.BigEndian.Uint32(b)
	body := b[4:]
	c.log.Debug("rfb extended clipboard message", "flags", fmt.Sprintf("%#x", flags), "bytes", n)
	switch {
	case flags&clipCaps != 0:
		return s.clipCaps(flags, body)
	case flags&clipRequest != 0:
		if flags&clipText == 0 {
			return nil
		}
		c.mu.Lock()
		text := c.localClip
		c.mu.Unlock()
		return c.send(appendClipProvide(nil, text))
	case flags&clipPeek != 0:
		c.mu.Lock()
		f := uint32(clipNotify)
		if c.localClip != "" {
			f |= clipText
		}
		c.mu.Unlock()
		return c.send(appendClipFlags(nil, f))
	case flags&clipNotify != 0:
		if flags&clipText == 0 {
			return nil
		}
		return c.send(appendClipFlags(nil, clipRequest|clipText))
	case flags&clipProvide != 0:
		text, ok, err := parseClipProvide(flags, body)
		if err != nil {
			return err
		}
		if ok {
			s.fb.SetClipboard(text)
		}
	}
	return nil
}

// clipCaps records the server's capabilities and answers with ours: UTF-8
// text up to maxCutText, all four actions.
func (s *session) clipCaps(flags uint32, body []byte) error {
	c := s.c
	st := clipState{ext: true, flags: flags}
	// One size per format bit, in bit order; text is bit 0.
	i := 0
	for bit := 0; bit < 16; bit++ {
		if flags&(1<<bit) == 0 {
			continue
		}
		if len(body) < 4*(i+1) {
			return protoErr("extended clipboard caps too short")
		}
		if bit == 0 {
			st.textLimit = binary.BigEndian.Uint32(body[4*i:])
		}
		i++
	}
	c.mu.Lock()
	c.clip = st
	c.mu.Unlock()
	msg := []byte{msgClientCutText, 0, 0, 0}
	msg = binary.BigEndian.AppendUint32(msg, negLen(8))
	msg = binary.BigEndian.AppendUint32(msg, clipCaps|clipRequest|clipPeek|clipNotify|clipProvide|clipText)
	msg = binary.BigEndian.AppendUint32(msg, maxCutText)
	return c.send(msg)
}

// parseClipProvide extracts the UTF-8 text from a provide message's zlib
// stream. ok is false when the message holds no text.
func parseClipProvide(flags uint32, body []byte) (text string, ok bool, err error) {
	if flags&clipText == 0 {
		return "", false, nil
	}
	zr, err := zlib.NewReader(bytes.NewReader(body))
	if err != nil {
		return "", false, fmt.Errorf("rfb: extended clipboard provide: %w", err)
	}
	defer zr.Close()
	var sz [4]byte
	if _, err := io.ReadFull(zr, sz[:]); err != nil {
		return "", false, fmt.Errorf("rfb: extended clipboard provide: %w", err)
	}
	n := binary.BigEndian.Uint32(sz[:])
	if n > maxCutText {
		return "", false, protoErr("extended clipboard text of %d bytes exceeds the limit of %d", n, maxCutText)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(zr, b); err != nil {
		return "", false, fmt.Errorf("rfb: extended clipboard provide: %w", err)
	}
	b = bytes.TrimRight(b, "\x00")
	t := strings.ReplaceAll(string(b), "\r\n", "\n")
	if !utf8.ValidString(t) {
		t = strings.ToValidUTF8(t, "\uFFFD")
	}
	return t, true, nil
}

func appendClipFlags(b []byte, flags uint32) []byte {
	b = append(b, msgClientCutText, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, negLen(4))
	return binary.BigEndian.AppendUint32(b, flags)
}

// appendClipProvide builds an extended ClientCutText provide message with
// text as NUL-terminated UTF-8 with CRLF line ends, zlib-compressed.
func appendClipProvide(b []byte, text string) []byte {
	t := strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\n", "\r\n")
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	var sz [4]byte
	binary.BigEndian.PutUint32(sz[:], uint32(len(t)+1))
	zw.Write(sz[:])
	io.WriteString(zw, t)
	zw.Write([]byte{0})
	zw.Close()
	b = append(b, msgClientCutText, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, negLen(4+z.Len()))
	b = binary.BigEndian.AppendUint32(b, clipProvide|clipText)
	return append(b, z.Bytes()...)
}

// appendClientCutText builds a plain ClientCutText with text in Latin-1;
// characters outside Latin-1 become '?'.
func appendClientCutText(b []byte, text string) []byte {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	lat := make([]byte, 0, len(text))
	for _, r := range text {
		if r > 0xff {
			r = '?'
		}
		lat = append(lat, byte(r))
	}
	b = append(b, msgClientCutText, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(lat)))
	return append(b, lat...)
}

// Clipboard puts text on the server's clipboard: with the extended
// clipboard as UTF-8 (provided at once when the server takes that much
// unsolicited, else announced and provided on request), otherwise as
// Latin-1 ClientCutText.
func (c *Client) Clipboard(text string) error {
	if len(text) > maxCutText {
		return fmt.Errorf("rfb: clipboard text of %d bytes exceeds the limit of %d", len(text), maxCutText)
	}
	c.mu.Lock()
	c.localClip = text
	st := c.clip
	c.mu.Unlock()
	switch {
	case st.ext && st.flags&(clipProvide|clipText) == clipProvide|clipText && uint32(len(text)+1) <= st.textLimit:
		return c.send(appendClipProvide(nil, text))
	case st.ext && st.flags&clipNotify != 0:
		return c.send(appendClipFlags(nil, clipNotify|clipText))
	}
	return c.send(appendClientCutText(nil, text))
}

// negLen encodes the length of an extended clipboard message: negative.
func negLen(n int) uint32 { return uint32(-int32(n)) }
