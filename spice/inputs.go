package spice

import (
	"fmt"
	"sync"
	"time"

	"kvmgate/input"
)

// Inputs channel messages.
const (
	msgInputsInit            = 101
	msgInputsKeyModifiers    = 102
	msgInputsMouseMotionAck  = 111
	msgcInputsKeyDown        = 101
	msgcInputsKeyUp          = 102
	msgcInputsMouseMotion    = 111
	msgcInputsMousePosition  = 112
	msgcInputsMousePress     = 113
	msgcInputsMouseRelease   = 114
	inputsCapKeyScancode     = 0
	motionAckBunch           = 4
	maxUnackedMotions        = 2 * motionAckBunch
	spiceButtonLeft          = 1
	spiceButtonMiddle        = 2
	spiceButtonRight         = 3
	spiceButtonUp            = 4
	spiceButtonDown          = 5
	spiceMaskLeft            = 1 << 0
	spiceMaskMiddle          = 1 << 1
	spiceMaskRight           = 1 << 2
	spiceMaskUp              = 1 << 3
	spiceMaskDown            = 1 << 4
	maxWheelStepsPerEvent    = 32
	keyModifierScrollLock    = 1
	keyModifierNumLock       = 2
	keyModifierCapsLock      = 4
	inputsMessageModifierLen = 2
	// keyGap is the least time between two key messages. QEMU pushes
	// SPICE key events straight into the guest's PS/2 queue, which holds
	// 16 bytes and drops the rest, so a burst (paste as keystrokes) loses
	// keys; its VNC server spaces keys the same way (key-delay-ms=10).
	keyGap = 10 * time.Millisecond
)

// inputs sends keyboard and mouse events on the inputs channel. Its methods
// may be called from any goroutine; handle runs on the channel's reader.
type inputs struct {
	ch     *channel
	client *Client

	keyMu sync.Mutex
	// keyMu serialises key events and guards lastKey.
	lastKey time.Time

	mu sync.Mutex
	// mu guards the following.
	buttons   uint16 // SPICE button mask last sent
	x, y      int    // last position sent
	havePos   bool
	unacked   int
	pending   *input.PointerEvent // newest position held back while unacked motions pile up
	pendMode  uint32
	modifiers uint16 // keyboard LEDs as the server reports them
}

func newInputs(ch *channel, c *Client) *inputs { return &inputs{ch: ch, client: c} }

func (in *inputs) handle(m message) error {
	r := newReader(m.body)
	switch m.typ {
	case msgInputsInit, msgInputsKeyModifiers:
		mods := r.u16()
		if r.err != nil {
			return fmt.Errorf("spice: inputs modifiers: %w", r.err)
		}
		in.mu.Lock()
		in.modifiers = mods
		in.mu.Unlock()
	case msgInputsMouseMotionAck:
		in.mu.Lock()
		in.unacked = max(0, in.unacked-motionAckBunch)
		p, mode := in.pending, in.pendMode
		in.pending = nil
		in.mu.Unlock()
		if p != nil {
			return in.pointer(*p, mode)
		}
	}
	return nil
}

// forgetPosition makes the next pointer event a starting point: in server
// mode it sends no motion, only buttons and wheel.
func (in *inputs) forgetPosition() {
	in.mu.Lock()
	in.havePos, in.pending = false, nil
	in.mu.Unlock()
}

// key sends the set-1 scancode bytes of a key. SPICE servers push each
// non-zero byte of a KEY_DOWN or KEY_UP code to the guest keyboard in
// order, so longer sequences (Pause) go out as several messages.
func (in *inputs) key(ev input.KeyEvent) error {
	seq := input.SetOneBytes(ev.Code, ev.Down)
	if seq == nil {
		if input.SetOneBytes(ev.Code, true) == nil {
			return fmt.Errorf("spice: no scancode for key %q: %w", ev.Code, errUnknownKey)
		}
		return nil // a key that sends nothing on release
	}
	typ := uint16(msgcInputsKeyUp)
	if ev.Down {
		typ = msgcInputsKeyDown
	}
	in.keyMu.Lock()
	defer in.keyMu.Unlock()
	for len(seq) > 0 {
		if wait := keyGap - time.Since(in.lastKey); wait > 0 {
			time.Sleep(wait)
		}
		in.lastKey = time.Now()
		n := min(4, len(seq))
		var code uint32
		for i := n - 1; i >= 0; i-- {
			code = code<<8 | uint32(seq[i])
		}
		if err := in.ch.send(typ, le.AppendUint32(nil, code)); err != nil {
			return err
		}
		seq = seq[n:]
	}
	return nil
}

var errUnknownKey = fmt.Errorf("unknown key")

// spiceButtons converts an input button mask to SPICE's.
func spiceButtons(b input.Buttons) uint16 {
	var m uint16
	if b&input.ButtonLeft != 0 {
		m |= spiceMaskLeft
	}
	if b&input.ButtonMiddle != 0 {
		m |= spiceMaskMiddle
	}
	if b&input.ButtonRight != 0 {
		m |= spiceMaskRight
	}
	return m
}

// pointer sends a pointer event: the position (client mouse mode) or the
// motion since the last event (server mode), button changes and wheel
// steps. While the server has not acknowledged enough motion messages the
// newest position is held back and sent with the next acknowledgement.
func (in *inputs) pointer(ev input.PointerEvent, mode uint32) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	x, y := max(ev.X, 0), max(ev.Y, 0)
	buttons := spiceButtons(ev.Buttons)
	moved := !in.havePos || x != in.x || y != in.y
	if moved {
		if in.unacked >= maxUnackedMotions && buttons == in.buttons && ev.WheelX == 0 && ev.WheelY == 0 {
			e := ev
			in.pending, in.pendMode = &e, mode
			return nil
		}
		var err error
		if mode == MouseModeClient {
			b := le.AppendUint32(nil, uint32(x))
			b = le.AppendUint32(b, uint32(y))
			b = le.AppendUint16(b, in.buttons)
			b = append(b, 0)
			err = in.ch.send(msgcInputsMousePosition, b)
		} else if in.havePos {
			b := le.AppendUint32(nil, uint32(int32(x-in.x)))
			b = le.AppendUint32(b, uint32(int32(y-in.y)))
			b = le.AppendUint16(b, in.buttons)
			err = in.ch.send(msgcInputsMouseMotion, b)
		}
		if err != nil {
			return err
		}
		in.x, in.y, in.havePos = x, y, true
		in.unacked++
		in.pending = nil
	}
	for _, bt := range []struct {
		mask uint16
		id   byte
	}{{spiceMaskLeft, spiceButtonLeft}, {spiceMaskMiddle, spiceButtonMiddle}, {spiceMaskRight, spiceButtonRight}} {
		if (buttons^in.buttons)&bt.mask == 0 {
			continue
		}
		typ := uint16(msgcInputsMouseRelease)
		if buttons&bt.mask != 0 {
			typ = msgcInputsMousePress
		}
		in.buttons ^= bt.mask
		if err := in.ch.send(typ, le.AppendUint16([]byte{bt.id}, in.buttons)); err != nil {
			return err
		}
	}
	steps, id, mask := ev.WheelY, byte(spiceButtonDown), uint16(spiceMaskDown)
	if steps < 0 {
		steps, id, mask = -steps, spiceButtonUp, spiceMaskUp
	}
	for i := 0; i < min(steps, maxWheelStepsPerEvent); i++ {
		if err := in.ch.send(msgcInputsMousePress, le.AppendUint16([]byte{id}, in.buttons|mask)); err != nil {
			return err
		}
		if err := in.ch.send(msgcInputsMouseRelease, le.AppendUint16([]byte{id}, in.buttons)); err != nil {
			return err
		}
	}
	return nil
}
