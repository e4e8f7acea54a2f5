package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/gorilla/websocket"
)

// cdpMessage is one DevTools protocol message in either direction: a command
// (ID, Method, Params), a reply (ID, Result or Error) or an event (Method,
// Params). SessionID routes messages to an attached target (flatten mode).
type cdpMessage struct {
	ID        int64           `json:"id,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *cdpError       `json:"error,omitempty"`
}

// cdpError is the error object of a failed command.
type cdpError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    string `json:"data,omitempty"`
}

func (e *cdpError) Error() string {
	if e.Data != "" {
		return fmt.Sprintf("cdp error %d: %s (%s)", e.Code, e.Message, e.Data)
	}
	return fmt.Sprintf("cdp error %d: %s", e.Code, e.Message)
}

// eventHandler receives the events of one session. It runs on the reader
// goroutine and must not block.
type eventHandler func(method string, params json.RawMessage)

// conn is a DevTools protocol connection to the browser endpoint. Its reader
// goroutine (started by dialCDP, ended by close) owns ws reads; wmu
// serialises writes.
type conn struct {
	ws   *websocket.Conn
	wmu  sync.Mutex // serialises ws writes
	done chan struct{}

	mu       sync.Mutex // guards the following
	next     int64
	pending  map[int64]chan cdpMessage
	handlers map[string]eventHandler // by session ID; "" is the browser
	err      error                   // why the reader stopped
}

// dialCDP connects to a browser's DevTools WebSocket URL.
func dialCDP(ctx context.Context, url string) (*conn, error) {
	d := websocket.Dialer{ReadBufferSize: 1 << 16, WriteBufferSize: 1 << 16}
	ws, _, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("browsertest: dial devtools %s: %w", url, err)
	}
	ws.SetReadLimit(512 << 20)
	c := &conn{
		ws:       ws,
		done:     make(chan struct{}),
		pending:  make(map[int64]chan cdpMessage),
		handlers: make(map[string]eventHandler),
	}
	go c.readLoop()
	return c, nil
}

func (c *conn) readLoop() {
	defer close(c.done)
	for {
		var m cdpMessage
		if err := c.ws.ReadJSON(&m); err != nil {
			c.mu.Lock()
			c.err = fmt.Errorf("browsertest: devtools connection: %w", err)
			for id, ch := range c.pending {
				close(ch)
				delete(c.pending, id)
			}
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		if m.ID != 0 {
			ch := c.pending[m.ID]
			delete(c.pending, m.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- m // buffered, never blocks
			}
			continue
		}
		h := c.handlers[m.SessionID]
		c.mu.Unlock()
		if h != nil && m.Method != "" {
			h(m.Method, m.Params)
		}
	}
}

// handle sets the event handler of a session (nil removes it).
func (c *conn) handle(sessionID string, h eventHandler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h == nil {
		delete(c.handlers, sessionID)
		return
	}
	c.handlers[sessionID] = h
}

// call sends a command and waits for its reply until ctx ends. If result is
// not nil the reply's result is decoded into it.
func (c *conn) call(ctx context.Context, sessionID, method string, params, result any) error {
	var raw json.RawMessage
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return fmt.Errorf("browsertest: %s params: %w", method, err)
		}
		raw = b
	}
	ch := make(chan cdpMessage, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return fmt.Errorf("browsertest: %s: %w", method, err)
	}
	c.next++
	id := c.next
	c.pending[id] = ch
	c.mu.Unlock()

	c.wmu.Lock()
	err := c.ws.WriteJSON(cdpMessage{ID: id, SessionID: sessionID, Method: method, Params: raw})
	c.wmu.Unlock()
	if err != nil {
		c.forget(id)
		return fmt.Errorf("browsertest: send %s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			c.mu.Lock()
			err := c.err
			c.mu.Unlock()
			return fmt.Errorf("browsertest: %s: %w", method, err)
		}
		if m.Error != nil {
			return fmt.Errorf("browsertest: %s: %w", method, m.Error)
		}
		if result != nil && len(m.Result) > 0 {
			if err := json.Unmarshal(m.Result, result); err != nil {
				return fmt.Errorf("browsertest: %s result: %w", method, err)
			}
		}
		return nil
	case <-ctx.Done():
		c.forget(id)
		return fmt.Errorf("browsertest: %s: %w", method, ctx.Err())
	}
}

func (c *conn) forget(id int64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// close closes the socket and waits for the reader to stop.
func (c *conn) close() error {
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadlineSoon())
	c.wmu.Unlock()
	err := c.ws.Close()
	<-c.done
	if errors.Is(err, websocket.ErrCloseSent) {
		err = nil
	}
	return err
}
