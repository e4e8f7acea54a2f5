//go:build linux && !amd64 && !arm64

package harness

// sysSetns is unknown here: the tc emulator reports itself unsupported.
const sysSetns = -1
