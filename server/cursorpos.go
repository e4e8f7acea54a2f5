package server

import "kvmgate/framebuffer"

// cursorPosMsg tells the browser where the backend's cursor hotspot is.
type cursorPosMsg struct {
	T string `json:"t"`
	X int    `json:"x"`
	Y int    `json:"y"`
}

// sendCursorPos sends the cursor position an update carries, if it moved.
// Positions are coalesced by the framebuffer: a viewer only ever gets the
// latest one, at most once per Take.
func (vc *viewerConn) sendCursorPos(u *framebuffer.Update) error {
	if !u.CursorMoved {
		return nil
	}
	return vc.writeJSON(cursorPosMsg{T: "cursorpos", X: u.CursorX, Y: u.CursorY})
}
