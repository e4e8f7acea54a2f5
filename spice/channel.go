package spice

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Messages every channel understands (SPICE_MSG_* and SPICE_MSGC_* of the
// base channel).
const (
	msgMigrate          = 1
	msgMigrateData      = 2
	msgSetAck           = 3
	msgPing             = 4
	msgWaitForChannels  = 5
	msgDisconnecting    = 6
	msgNotify           = 7
	msgList             = 8
	msgcAckSync         = 1
	msgcAck             = 2
	msgcPong            = 3
	msgcDisconnecting   = 6
	maxMessageSize      = 128 << 20
	writeTimeout        = 10 * time.Second
	waitChannelsTimeout = 5 * time.Second
)

// message is one received message: its type and body (valid until the next
// read on the same channel).
type message struct {
	typ  uint16
	body []byte
}

// channel is one linked SPICE channel connection. Its reader goroutine (run)
// owns conn's reads and the fields marked reader-owned; send may be called
// from any goroutine.
type channel struct {
	typ, id uint8
	conn    net.Conn
	br      *bufio.Reader
	mini    bool
	caps    *linkResult
	log     *slog.Logger
	// peers returns another channel of the same session, for
	// WAIT_FOR_CHANNELS; nil if none.
	peers func(typ, id uint8) *channel

	wmu sync.Mutex
	// wmu guards the following (and serialises writes on conn).
	sendSerial uint64

	// received counts messages received, for WAIT_FOR_CHANNELS on other
	// channels.
	received atomic.Uint64

	// Reader-owned.
	ctx       context.Context // the context run was called with
	buf       []byte
	ackWindow uint32
	ackLeft   uint32
}

// errMigrate is returned by a channel reader when the server moves the
// session elsewhere; the client reconnects.
var errMigrate = errors.New("spice: the server is migrating the session")

func (c *channel) name() string {
	if c.id == 0 {
		return channelName(c.typ)
	}
	return fmt.Sprintf("%s:%d", channelName(c.typ), c.id)
}

// send writes one message. It never blocks longer than writeTimeout.
func (c *channel) send(typ uint16, body []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var hdr []byte
	le := binary.LittleEndian
	if c.mini {
		hdr = make([]byte, 6, 6+len(body))
		le.PutUint16(hdr, typ)
		le.PutUint32(hdr[2:], uint32(len(body)))
	} else {
		c.sendSerial++
		hdr = make([]byte, 18, 18+len(body))
		le.PutUint64(hdr, c.sendSerial)
		le.PutUint16(hdr[8:], typ)
		le.PutUint32(hdr[10:], uint32(len(body)))
	}
	c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.conn.Write(append(hdr, body...))
	if err != nil {
		return fmt.Errorf("spice: %s: sending message %d: %w", c.name(), typ, err)
	}
	return nil
}

// readHeader reads one data header and returns the message type, body size
// and, for the full header, the sub-message list offset.
func (c *channel) readMessage() (message, uint32, error) {
	var h [18]byte
	n := 18
	if c.mini {
		n = 6
	}
	if _, err := io.ReadFull(c.br, h[:n]); err != nil {
		return message{}, 0, err
	}
	le := binary.LittleEndian
	var typ uint16
	var size, subList uint32
	if c.mini {
		typ, size = le.Uint16(h[:]), le.Uint32(h[2:])
	} else {
		typ, size, subList = le.Uint16(h[8:]), le.Uint32(h[10:]), le.Uint32(h[14:])
	}
	if size > maxMessageSize {
		return message{}, 0, FormatError(fmt.Sprintf("%s message %d of %d bytes (limit %d)", c.name(), typ, size, maxMessageSize))
	}
	if cap(c.buf) < int(size) {
		c.buf = make([]byte, size)
	}
	body := c.buf[:size]
	if _, err := io.ReadFull(c.br, body); err != nil {
		return message{}, 0, fmt.Errorf("reading message %d body: %w", typ, err)
	}
	return message{typ: typ, body: body}, subList, nil
}

// run reads messages until ctx ends or the connection fails, answering the
// base channel messages itself and passing the others to handle. After each
// message it calls idle (if set) when no further bytes are buffered, which is
// where the display channel publishes.
func (c *channel) run(ctx context.Context, handle func(message) error, idle func()) error {
	c.ctx = ctx
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	defer stop()
	for {
		m, subList, err := c.readMessage()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("spice: %s channel closed by the server: %w", c.name(), err)
			}
			return fmt.Errorf("spice: %s: %w", c.name(), err)
		}
		c.received.Add(1)
		if subList != 0 {
			if err := c.handleSubMessages(ctx, m.body, subList, handle); err != nil {
				return err
			}
		}
		if err := c.dispatch(ctx, m, handle); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if c.ackWindow > 0 {
			c.ackLeft--
			if c.ackLeft == 0 {
				c.ackLeft = c.ackWindow
				if err := c.send(msgcAck, nil); err != nil {
					return err
				}
			}
		}
		if idle != nil && c.br.Buffered() == 0 {
			idle()
		}
	}
}

// handleSubMessages dispatches the messages of a SpiceSubMessageList.
func (c *channel) handleSubMessages(ctx context.Context, body []byte, off uint32, handle func(message) error) error {
	r := newReader(body).at(off)
	n := r.u16()
	for i := 0; i < int(n) && r.err == nil; i++ {
		s := newReader(body).at(r.u32())
		typ, size := s.u16(), s.u32()
		data := s.bytes(int(size))
		if s.err != nil {
			return fmt.Errorf("spice: %s: sub-message list: %w", c.name(), s.err)
		}
		if err := c.dispatch(ctx, message{typ: typ, body: data}, handle); err != nil {
			return err
		}
	}
	if r.err != nil {
		return fmt.Errorf("spice: %s: sub-message list: %w", c.name(), r.err)
	}
	return nil
}

// dispatch handles the base channel messages and passes the rest on.
func (c *channel) dispatch(ctx context.Context, m message, handle func(message) error) error {
	r := newReader(m.body)
	switch m.typ {
	case msgSetAck:
		gen, window := r.u32(), r.u32()
		if r.err != nil {
			return fmt.Errorf("spice: %s: SET_ACK: %w", c.name(), r.err)
		}
		c.ackWindow, c.ackLeft = window, window
		return c.send(msgcAckSync, binary.LittleEndian.AppendUint32(nil, gen))
	case msgPing:
		id, ts := r.u32(), r.u64()
		if r.err != nil {
			return fmt.Errorf("spice: %s: PING: %w", c.name(), r.err)
		}
		b := binary.LittleEndian.AppendUint32(nil, id)
		return c.send(msgcPong, binary.LittleEndian.AppendUint64(b, ts))
	case msgNotify:
		r.u64()
		sev, vis, what := r.u32(), r.u32(), r.u32()
		n := r.u32()
		text := r.bytes(int(min(n, uint32(len(m.body)))))
		if r.err != nil {
			return fmt.Errorf("spice: %s: NOTIFY: %w", c.name(), r.err)
		}
		c.log.Info("spice: server notice", "channel", c.name(), "severity", sev, "visibility", vis, "code", what,
			"message", string(trimNUL(text)))
		return nil
	case msgDisconnecting:
		r.u64()
		reason := LinkErr(r.u32())
		c.log.Info("spice: server is disconnecting the channel", "channel", c.name(), "reason", reason.String())
		return nil
	case msgWaitForChannels:
		return c.waitForChannels(ctx, r)
	case msgMigrate:
		return errMigrate
	case msgMigrateData, msgList:
		return nil
	}
	return handle(m)
}

// waitForChannels waits until the listed channels have received the given
// message serials (the server orders cross-channel cache operations this
// way). A channel this client does not have is not waited for.
func (c *channel) waitForChannels(ctx context.Context, r *reader) error {
	n := r.u8()
	type wait struct {
		typ, id uint8
		serial  uint64
	}
	var waits []wait
	for i := 0; i < int(n); i++ {
		w := wait{typ: r.u8(), id: r.u8(), serial: r.u64()}
		waits = append(waits, w)
	}
	if r.err != nil {
		return fmt.Errorf("spice: %s: WAIT_FOR_CHANNELS: %w", c.name(), r.err)
	}
	deadline := time.Now().Add(waitChannelsTimeout)
	for _, w := range waits {
		var peer *channel
		if c.peers != nil {
			peer = c.peers(w.typ, w.id)
		}
		if peer == nil || peer == c {
			continue
		}
		for peer.received.Load() < w.serial {
			if time.Now().After(deadline) {
				c.log.Warn("spice: gave up waiting for another channel", "channel", c.name(),
					"waiting_for", peer.name(), "serial", w.serial, "at", peer.received.Load())
				return nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(2 * time.Millisecond):
			}
		}
	}
	return nil
}

func trimNUL(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// reader reads little-endian fields from a message body with bounds checks.
// The first error sticks; reads after it return zero values.
type reader struct {
	b   []byte
	p   int
	err error
}

func newReader(b []byte) *reader { return &reader{b: b} }

func (r *reader) fail(n int) {
	if r.err == nil {
		r.err = FormatError(fmt.Sprintf("message truncated: need %d bytes at offset %d of %d", n, r.p, len(r.b)))
	}
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.p < n {
		r.fail(n)
		return nil
	}
	s := r.b[r.p : r.p+n]
	r.p += n
	return s
}

func (r *reader) u8() uint8 {
	if s := r.take(1); s != nil {
		return s[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if s := r.take(2); s != nil {
		return binary.LittleEndian.Uint16(s)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if s := r.take(4); s != nil {
		return binary.LittleEndian.Uint32(s)
	}
	return 0
}

func (r *reader) i32() int32 { return int32(r.u32()) }

func (r *reader) i16() int16 { return int16(r.u16()) }

func (r *reader) u64() uint64 {
	if s := r.take(8); s != nil {
		return binary.LittleEndian.Uint64(s)
	}
	return 0
}

// bytes returns the next n bytes (aliasing the body).
func (r *reader) bytes(n int) []byte { return r.take(n) }

// rest returns the unread bytes.
func (r *reader) rest() []byte {
	if r.err != nil {
		return nil
	}
	s := r.b[r.p:]
	r.p = len(r.b)
	return s
}

// at returns a reader of the same body positioned at off (a SPICE pointer,
// which counts from the start of the message body). The new reader inherits
// r's error.
func (r *reader) at(off uint32) *reader {
	n := &reader{b: r.b, err: r.err}
	if n.err == nil && uint64(off) > uint64(len(r.b)) {
		n.err = FormatError(fmt.Sprintf("pointer %d outside the %d-byte message", off, len(r.b)))
	}
	n.p = int(min(uint64(off), uint64(len(r.b))))
	return n
}
