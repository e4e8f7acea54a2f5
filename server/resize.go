package server

import (
	"encoding/json"
	"fmt"
	"math"

	"kvmgate/backend"
	"kvmgate/framebuffer"
)

// Remote resize and console capabilities on the viewer connection: the
// browser's "resize" message asks the console for a display size (coalesced
// and bounded by the session, session.Viewer.Resize), and "caps" messages
// tell viewers when the console's pointer kind or resizability changes.

// capsMsg tells a viewer the console's capabilities after a change.
type capsMsg struct {
	T       string `json:"t"`
	Pointer string `json:"pointer,omitempty"`
	Resize  bool   `json:"resize"`
}

// resizeMsg is the browser's "resize" message: the size it would like the
// console's display to be, in device pixels.
type resizeMsg struct {
	W float64 `json:"w"`
	H float64 `json:"h"`
}

// maxResizeField bounds the numbers a resize message may carry; larger
// ones are protocol errors (sizes within it are clamped by the session).
const maxResizeField = 1 << 16

// helloCaps returns the pointer kind and resizability for hello: the
// framebuffer's caps, or the backend's description for consoles that do
// not publish caps.
func (vc *viewerConn) helloCaps(info backend.Info) (pointer string, resize bool) {
	c := vc.v.Session().Framebuffer().Caps()
	pointer = c.Pointer
	if pointer == "" {
		pointer = info.Details["pointer"]
	}
	return pointer, c.Resizable
}

// sendCaps sends a "caps" message when an update carries changed caps.
func (vc *viewerConn) sendCaps(u *framebuffer.Update) error {
	if !u.CapsChanged {
		return nil
	}
	return vc.writeJSON(capsMsg{T: "caps", Pointer: u.Caps.Pointer, Resize: u.Caps.Resizable})
}

// handleResize applies a "resize" message. Resizing is input: it goes the
// way keys go, so a viewer that may not send input may not resize either.
// Malformed sizes are protocol errors; a console that cannot resize is a
// note for the user.
func (vc *viewerConn) handleResize(data []byte) error {
	var m resizeMsg
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("malformed resize message: %v", err)
	}
	if !(m.W >= 1 && m.W <= maxResizeField && m.H >= 1 && m.H <= maxResizeField) {
		return fmt.Errorf("resize to %vx%v: want sizes from 1 to %d", m.W, m.H, maxResizeField)
	}
	if err := vc.v.Resize(int(math.Round(m.W)), int(math.Round(m.H))); err != nil {
		vc.note(err.Error())
	}
	return nil
}
