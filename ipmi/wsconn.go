package ipmi

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// WSConn carries a byte stream in binary WebSocket messages, as the HTML5
// consoles of BMCs do, behind the net.Conn interface. Reads may span
// messages; each Write is one message.
type WSConn struct {
	ws *websocket.Conn

	rmu sync.Mutex
	// rmu guards the following (Read is called by one goroutine at a time).
	r io.Reader

	wmu sync.Mutex // serialises writes
}

// NewWSConn wraps an established WebSocket connection.
func NewWSConn(ws *websocket.Conn) *WSConn { return &WSConn{ws: ws} }

// DialWebSocket opens a WebSocket to rawURL with the given headers (the
// BMC's session cookie) and TLS configuration.
func DialWebSocket(ctx context.Context, rawURL string, header http.Header, conf *tls.Config) (*WSConn, error) {
	d := websocket.Dialer{TLSClientConfig: conf, HandshakeTimeout: 15 * time.Second, Proxy: nil}
	ws, resp, err := d.DialContext(ctx, rawURL, header)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("ipmi: websocket %s: %w (HTTP %s)", rawURL, err, resp.Status)
		}
		return nil, fmt.Errorf("ipmi: websocket %s: %w", rawURL, err)
	}
	return NewWSConn(ws), nil
}

// Read reads stream bytes, skipping non-binary messages.
func (c *WSConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				continue
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if err == io.EOF {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// Write sends p as one binary message.
func (c *WSConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close closes the WebSocket without a closing handshake.
func (c *WSConn) Close() error { return c.ws.Close() }

// LocalAddr returns the local network address.
func (c *WSConn) LocalAddr() net.Addr { return c.ws.LocalAddr() }

// RemoteAddr returns the remote network address.
func (c *WSConn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *WSConn) SetDeadline(t time.Time) error {
	c.ws.SetReadDeadline(t)
	return c.ws.SetWriteDeadline(t)
}

// SetReadDeadline sets the read deadline.
func (c *WSConn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (c *WSConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }
