// Package input describes keyboard and pointer input as the browser reports
// it, and maps it to what each backend protocol wants: XT scancodes (QEMU's
// extended key event, SPICE), USB HID usages (BMCs) and X11 keysyms (plain
// RFB).
package input

// KeyEvent is one key press or release. Code is the browser's
// KeyboardEvent.code (the physical key, e.g. "KeyA", "ShiftLeft"); Key is
// KeyboardEvent.key (the character or named key it produced, e.g. "a", "A",
// "Enter"), which backends that work with keysyms need. Either may be empty
// when the other is enough.
type KeyEvent struct {
	Code string
	Key  string
	Down bool
}

// Buttons is a pointer button mask in the RFB convention.
type Buttons uint8

// Pointer buttons, in the RFB bit order.
const (
	ButtonLeft Buttons = 1 << iota
	ButtonMiddle
	ButtonRight
	WheelUp
	WheelDown
	WheelLeft
	WheelRight
	ButtonBack
)

// PointerEvent is an absolute pointer position in framebuffer pixels with the
// buttons held. Wheel steps are reported separately in WheelX/WheelY (notches,
// positive = down/right) so backends can turn them into button clicks or
// wheel messages.
type PointerEvent struct {
	X, Y    int
	Buttons Buttons
	WheelX  int
	WheelY  int
}

// Action is a console action that is not a key: power control and the like.
type Action string

// Actions understood by backends that support them (RFB XVP, BMC power).
const (
	ActionShutdown Action = "shutdown"
	ActionReboot   Action = "reboot"
	ActionReset    Action = "reset"
	ActionPowerOn  Action = "power-on"
	ActionPowerOff Action = "power-off"
)
