package websockify

import (
	"encoding/base64"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// wsConn presents a WebSocket carrying an RFB byte stream as a net.Conn,
// so that rfbserver can serve it like a TCP connection. Each Write is one
// binary message (a text message of base64 under the legacy "base64"
// subprotocol); reads run across message boundaries. One goroutine may
// read while another writes, as gorilla/websocket allows.
type wsConn struct {
	ws     *websocket.Conn
	b64    bool
	remote net.Addr
	rec    *recorder // nil when not recording
	stats  *Stats
	last   *atomic.Int64 // unix nanoseconds of the last traffic

	r io.Reader // the message being read; owned by the reader

	closeOnce sync.Once
}

func (c *wsConn) touch() { c.last.Store(time.Now().UnixNano()) }

// Read reads the next bytes the browser sent.
func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				return 0, readError(err)
			}
			switch {
			case c.b64 && typ == websocket.TextMessage:
				r = base64.NewDecoder(base64.StdEncoding, r)
			case typ != websocket.BinaryMessage:
				// noVNC never sends text in binary mode; websockify
				// relays it as bytes too.
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if n > 0 {
			c.touch()
			c.stats.BytesFromViewers.Add(uint64(n))
			c.rec.fromClient(p[:n])
		}
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err != nil {
			return n, readError(err)
		}
		return n, nil
	}
}

// readError turns the end of a WebSocket into io.EOF, as a TCP
// connection's end reads.
func readError(err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return io.EOF
	}
	return err
}

// Write sends p as one message.
func (c *wsConn) Write(p []byte) (int, error) {
	// Recorded before it is sent, so the recording keeps the order the
	// browser saw: its answer cannot be recorded ahead of this.
	c.rec.toClient(p)
	if err := sendMessage(c.ws, c.b64, p); err != nil {
		return 0, err
	}
	c.touch()
	c.stats.BytesToViewers.Add(uint64(len(p)))
	return len(p), nil
}

// sendMessage writes p as one binary message, or as base64 text.
func sendMessage(ws *websocket.Conn, b64 bool, p []byte) error {
	if !b64 {
		return ws.WriteMessage(websocket.BinaryMessage, p)
	}
	w, err := ws.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	enc := base64.NewEncoder(base64.StdEncoding, w)
	if _, err := enc.Write(p); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	return w.Close()
}

// Close sends a normal close frame (best effort) and closes the socket.
func (c *wsConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		_ = c.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		err = c.ws.Close()
	})
	return err
}

func (c *wsConn) LocalAddr() net.Addr  { return c.ws.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr { return c.remote }

func (c *wsConn) SetDeadline(t time.Time) error {
	if err := c.ws.SetReadDeadline(t); err != nil {
		return err
	}
	return c.ws.SetWriteDeadline(t)
}

func (c *wsConn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }

// remoteAddr is a net.Addr for the browser's address as the HTTP server
// saw it.
type remoteAddr string

func (a remoteAddr) Network() string { return "websocket" }
func (a remoteAddr) String() string  { return string(a) }
