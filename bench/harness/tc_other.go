//go:build !linux

package harness

import "errors"

func newTCEmulator(Link) (linkEmulator, error) {
	return nil, errors.New("harness: the tc emulator needs Linux (network namespaces, tc tbf)")
}
