// Package backend is the small interface every console protocol client (RFB,
// SPICE, BMC KVMs) implements, and the registry that opens one from a target
// URL. The session hub and the transports only ever see this interface, so a
// new protocol or BMC vendor never touches them.
package backend

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"sync"

	"kvmgate/framebuffer"
	"kvmgate/input"
)

// Console is one live connection to a console. Run owns the connection's
// reads; the input methods may be called from any goroutine and must not
// block on the network for long (they queue or write with a deadline).
type Console interface {
	// Run feeds fb until ctx ends (returning nil) or the connection fails.
	Run(ctx context.Context, fb *framebuffer.Framebuffer) error
	// Key sends a key press or release.
	Key(ev input.KeyEvent) error
	// Pointer sends the pointer position, buttons and wheel steps.
	Pointer(ev input.PointerEvent) error
	// Clipboard sends text to the console's clipboard.
	Clipboard(text string) error
	// Action performs a power or similar action; ErrUnsupported if the
	// console cannot.
	Action(a input.Action) error
	// Refresh asks the console to resend the whole screen.
	Refresh() error
	// Info describes the connection.
	Info() Info
	// Close ends the connection; Run then returns.
	Close() error
}

// Info describes an open console for status displays and logs. It never
// holds secrets.
type Info struct {
	Protocol string   // "rfb", "spice", ...
	Server   string   // the server's version or product banner
	Name     string   // desktop or VM name
	Actions  []string // supported input.Action values
	Details  map[string]string
}

// Resizer is implemented by consoles that can change the remote display's
// size on request (RFB's SetDesktopSize, a SPICE guest's monitor
// configuration). Whether a request can work right now (the server announced
// support, the guest's agent is connected) is published with
// framebuffer.Framebuffer.SetResizable, so that viewers learn when it changes.
type Resizer interface {
	// Resize asks the console to make its display w×h and waits until the
	// console accepted or refused the request, or ctx ends. It returns
	// ErrUnsupported (wrapped) when the console cannot resize now. The new
	// size reaches the framebuffer as usual, possibly later.
	Resize(ctx context.Context, w, h int) error
}

// ErrUnsupported is returned by input methods a console cannot honour.
var ErrUnsupported = errors.New("backend: not supported by this console")

// Secrets are credentials for a target. They come from files or the
// environment on the server, never from a browser.
type Secrets struct {
	Username string
	Password string
}

// Opener connects to a target and completes the protocol handshake.
type Opener func(ctx context.Context, target *url.URL, secrets Secrets) (Console, error)

var (
	mu      sync.RWMutex
	openers = map[string]Opener{}
)

// Register makes a URL scheme ("vnc", "spice", ...) openable. It is called
// from the protocol packages' init functions.
func Register(scheme string, o Opener) {
	mu.Lock()
	defer mu.Unlock()
	openers[scheme] = o
}

// Schemes lists the registered URL schemes.
func Schemes() []string {
	mu.RLock()
	defer mu.RUnlock()
	s := make([]string, 0, len(openers))
	for k := range openers {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// Open connects to target (e.g. "vnc://127.0.0.1:5900") with the opener
// registered for its scheme.
func Open(ctx context.Context, target string, secrets Secrets) (Console, error) {
	u, err := ParseTarget(target)
	if err != nil {
		return nil, err
	}
	mu.RLock()
	o, ok := openers[u.Scheme]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("backend: no protocol for %q targets (known: %v)", u.Scheme, Schemes())
	}
	return o(ctx, u, secrets)
}

// ParseTarget parses a target URL. A bare "host:port" means vnc://host:port,
// as in websockify token files.
func ParseTarget(target string) (*url.URL, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		u2, err2 := url.Parse("vnc://" + target)
		if err2 != nil || u2.Host == "" {
			return nil, fmt.Errorf("backend: bad target %q: want scheme://host:port or host:port", target)
		}
		u = u2
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return nil, fmt.Errorf("backend: target %q carries a password; give passwords in a file or the environment", u.Redacted())
		}
	}
	return u, nil
}
