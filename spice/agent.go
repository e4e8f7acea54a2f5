package spice

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"kvmgate/framebuffer"
)

// The VD agent protocol (spice-protocol's vd_agent.h) runs between the
// client and the guest's agent (spice-vdagent), carried by the main
// channel: AGENT_DATA messages in both directions hold pieces of a stream of
// VDAgentMessage records, each a 20-byte header (protocol, type, opaque,
// size) and size bytes. The server accepts as many client AGENT_DATA
// messages as it has given tokens for (INIT, AGENT_CONNECTED_TOKENS, then
// AGENT_TOKEN); the client gives the server unlimited tokens in
// AGENT_START.

// Main channel agent messages from the client.
const (
	msgcMainAgentStart = 106
	msgcMainAgentData  = 107

	mainCapAgentConnectedTokens = 2
)

// VD agent message types and capabilities.
const (
	vdAgentProtocol = 1

	vdAgentMonitorsConfig       = 2
	vdAgentReply                = 3
	vdAgentClipboard            = 4
	vdAgentAnnounceCapabilities = 6
	vdAgentClipboardGrab        = 7
	vdAgentClipboardRequest     = 8
	vdAgentClipboardRelease     = 9

	vdAgentCapMonitorsConfig    = 1
	vdAgentCapReply             = 2
	vdAgentCapClipboardByDemand = 5
	vdAgentCapGuestLineEndCRLF  = 9

	vdAgentClipboardNone     = 0
	vdAgentClipboardUTF8Text = 1

	vdAgentHeaderSize = 20
	// maxAgentData is the most bytes of one AGENT_DATA message
	// (VD_AGENT_MAX_DATA_SIZE).
	maxAgentData = 2048
	// maxAgentMessage bounds one VDAgentMessage from the server; a larger
	// one ends the agent stream (a hostile server cannot grow memory).
	maxAgentMessage = 4 << 20
	// maxClipboard bounds the clipboard text sent to the guest.
	maxClipboard = 1 << 20
	// maxAgentQueue bounds the AGENT_DATA messages waiting for tokens.
	maxAgentQueue = 2 * maxClipboard / maxAgentData
)

// ErrNoAgent is returned for clipboard and monitor requests while the
// guest runs no VD agent (spice-vdagent).
var ErrNoAgent = errors.New("spice: the guest's VD agent is not connected")

// agent is the client end of the VD agent protocol for one session. The
// main channel's reader calls the on* methods; clipboard and monitors may
// be called from any goroutine.
type agent struct {
	send func(typ uint16, body []byte) error // the main channel's send
	fb   *framebuffer.Framebuffer
	log  *slog.Logger

	// in holds the unparsed part of the agent's stream (reader only).
	in      []byte
	skip    int  // bytes of an oversized message still to drop (reader only)
	broken  bool // the stream is out of step; ignored until reconnect (reader only)
	claimed bool // the guest offered text we asked for (reader only)

	mu sync.Mutex
	// mu guards the following.
	connected bool
	tokens    uint32   // AGENT_DATA messages the server still accepts
	queue     [][]byte // AGENT_DATA bodies waiting for tokens
	caps      uint32   // the agent's capabilities (first word)
	clip      string   // text this client offers the guest
	haveClip  bool
}

func newAgent(send func(uint16, []byte) error, fb *framebuffer.Framebuffer, log *slog.Logger) *agent {
	return &agent{send: send, fb: fb, log: log}
}

// onConnected starts the agent protocol: the agent is there and the server
// accepts tokens AGENT_DATA messages.
func (a *agent) onConnected(tokens uint32) error {
	a.in, a.skip, a.broken = nil, 0, false
	a.mu.Lock()
	a.connected, a.tokens, a.queue, a.caps = true, tokens, nil, 0
	a.mu.Unlock()
	if err := a.send(msgcMainAgentStart, le.AppendUint32(nil, ^uint32(0))); err != nil {
		return err
	}
	if err := a.announce(true); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.haveClip {
		return a.grabLocked()
	}
	return nil
}

// isConnected reports whether the guest's agent is there.
func (a *agent) isConnected() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.connected
}

// onDisconnected forgets the agent.
func (a *agent) onDisconnected() {
	a.in, a.skip, a.broken = nil, 0, false
	a.mu.Lock()
	a.connected, a.queue = false, nil
	a.mu.Unlock()
}

// onTokens adds AGENT_DATA tokens and sends what waited for them.
func (a *agent) onTokens(n uint32) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokens += n
	for len(a.queue) > 0 && a.tokens > 0 {
		b := a.queue[0]
		a.queue = a.queue[1:]
		a.tokens--
		if err := a.send(msgcMainAgentData, b); err != nil {
			return err
		}
	}
	return nil
}

// onData takes the next piece of the agent's stream.
func (a *agent) onData(b []byte) error {
	if a.broken {
		return nil
	}
	if a.skip > 0 {
		n := min(a.skip, len(b))
		a.skip -= n
		b = b[n:]
	}
	a.in = append(a.in, b...)
	for len(a.in) >= vdAgentHeaderSize {
		r := newReader(a.in)
		proto, typ := r.u32(), r.u32()
		r.u64() // opaque
		size := r.u32()
		if proto != vdAgentProtocol {
			a.broken, a.in = true, nil
			a.log.Warn("spice: VD agent stream out of step; ignoring the agent", "protocol", proto)
			return nil
		}
		if size > maxAgentMessage {
			a.log.Warn("spice: VD agent message too large; dropped", "type", typ, "size", size)
			drop := min(int(size), len(a.in)-vdAgentHeaderSize)
			a.skip = int(size) - drop
			a.in = slices.Clone(a.in[vdAgentHeaderSize+drop:])
			continue
		}
		if len(a.in) < vdAgentHeaderSize+int(size) {
			break
		}
		body := a.in[vdAgentHeaderSize : vdAgentHeaderSize+int(size)]
		if err := a.handle(typ, body); err != nil {
			return err
		}
		a.in = a.in[vdAgentHeaderSize+int(size):]
	}
	if len(a.in) == 0 {
		a.in = nil // let a large message's buffer go
	}
	return nil
}

// handle handles one message from the agent.
func (a *agent) handle(typ uint32, body []byte) error {
	r := newReader(body)
	switch typ {
	case vdAgentAnnounceCapabilities:
		request := r.u32()
		caps := r.u32()
		if r.err != nil {
			return nil
		}
		a.mu.Lock()
		a.caps = caps
		a.mu.Unlock()
		a.log.Debug("spice: VD agent capabilities", "caps", fmt.Sprintf("%#x", caps))
		if request != 0 {
			return a.announce(false)
		}
	case vdAgentClipboardGrab:
		a.claimed = false
		for len(r.b)-r.p >= 4 {
			if r.u32() == vdAgentClipboardUTF8Text {
				a.claimed = true
				return a.message(vdAgentClipboardRequest, le.AppendUint32(nil, vdAgentClipboardUTF8Text))
			}
		}
	case vdAgentClipboard:
		t := r.u32()
		if r.err != nil || t != vdAgentClipboardUTF8Text || !a.claimed {
			return nil
		}
		text := strings.ToValidUTF8(string(r.rest()), "\uFFFD")
		a.mu.Lock()
		crlf := a.caps&(1<<vdAgentCapGuestLineEndCRLF) != 0
		a.mu.Unlock()
		if crlf {
			text = strings.ReplaceAll(text, "\r\n", "\n")
		}
		a.fb.SetClipboard(text)
	case vdAgentClipboardRequest:
		t := r.u32()
		a.mu.Lock()
		defer a.mu.Unlock()
		if r.err != nil || t != vdAgentClipboardUTF8Text || !a.haveClip {
			return a.messageLocked(vdAgentClipboard, le.AppendUint32(nil, vdAgentClipboardNone))
		}
		text := a.clip
		if a.caps&(1<<vdAgentCapGuestLineEndCRLF) != 0 {
			text = strings.ReplaceAll(text, "\n", "\r\n")
		}
		return a.messageLocked(vdAgentClipboard, append(le.AppendUint32(nil, vdAgentClipboardUTF8Text), text...))
	case vdAgentClipboardRelease:
		a.claimed = false
	case vdAgentReply:
		t, e := r.u32(), r.u32()
		a.log.Debug("spice: VD agent reply", "type", t, "error", e)
	}
	return nil
}

// announce sends the client's capabilities.
func (a *agent) announce(request bool) error {
	req := uint32(0)
	if request {
		req = 1
	}
	b := le.AppendUint32(nil, req)
	b = le.AppendUint32(b, 1<<vdAgentCapMonitorsConfig|1<<vdAgentCapReply|1<<vdAgentCapClipboardByDemand)
	return a.message(vdAgentAnnounceCapabilities, b)
}

// clipboard offers text to the guest (CLIPBOARD_GRAB); the guest asks for
// it when something pastes.
func (a *agent) clipboard(text string) error {
	if len(text) > maxClipboard {
		return fmt.Errorf("spice: clipboard text of %d bytes (at most %d)", len(text), maxClipboard)
	}
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.clip, a.haveClip = text, true
	if !a.connected {
		return ErrNoAgent
	}
	return a.grabLocked()
}

func (a *agent) grabLocked() error {
	return a.messageLocked(vdAgentClipboardGrab, le.AppendUint32(nil, vdAgentClipboardUTF8Text))
}

// Monitor is one monitor of a MonitorsConfig request: its size and
// position on the guest's desktop.
type Monitor struct {
	X, Y          int
	Width, Height int
}

// monitors asks the guest for a monitor layout (VD_AGENT_MONITORS_CONFIG).
// QEMU's SPICE server hands it to a QXL card whose guest driver takes it
// (Linux's qxl KMS driver) and otherwise to the agent.
func (a *agent) monitors(ms []Monitor) error {
	if len(ms) == 0 || len(ms) > 16 {
		return fmt.Errorf("spice: %d monitors (want 1 to 16)", len(ms))
	}
	b := le.AppendUint32(nil, uint32(len(ms)))
	b = le.AppendUint32(b, 0) // flags
	for _, m := range ms {
		if m.Width <= 0 || m.Height <= 0 || m.Width > 16384 || m.Height > 16384 {
			return fmt.Errorf("spice: monitor of %dx%d", m.Width, m.Height)
		}
		b = le.AppendUint32(b, uint32(m.Height))
		b = le.AppendUint32(b, uint32(m.Width))
		b = le.AppendUint32(b, 32) // depth
		b = le.AppendUint32(b, uint32(int32(m.X)))
		b = le.AppendUint32(b, uint32(int32(m.Y)))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.connected {
		return ErrNoAgent
	}
	return a.messageLocked(vdAgentMonitorsConfig, b)
}

func (a *agent) message(typ uint32, body []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.messageLocked(typ, body)
}

// messageLocked sends one VDAgentMessage in AGENT_DATA pieces, holding
// back those the server has no tokens for.
func (a *agent) messageLocked(typ uint32, body []byte) error {
	if !a.connected {
		return ErrNoAgent
	}
	msg := le.AppendUint32(nil, vdAgentProtocol)
	msg = le.AppendUint32(msg, typ)
	msg = le.AppendUint64(msg, 0)
	msg = le.AppendUint32(msg, uint32(len(body)))
	msg = append(msg, body...)
	for len(msg) > 0 {
		n := min(len(msg), maxAgentData)
		piece := msg[:n:n]
		msg = msg[n:]
		if a.tokens == 0 || len(a.queue) > 0 {
			if len(a.queue) >= maxAgentQueue {
				return fmt.Errorf("spice: VD agent: %d messages wait for tokens", len(a.queue))
			}
			a.queue = append(a.queue, piece)
			continue
		}
		a.tokens--
		if err := a.send(msgcMainAgentData, piece); err != nil {
			return err
		}
	}
	return nil
}
