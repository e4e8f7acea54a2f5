// Package ipmi opens the remote consoles of BMCs (baseboard management
// controllers) as kvmgate backends, replacing the vendor's Java or HTML5
// viewer.
//
// A target names the BMC's web interface, the account and the vendor:
//
//	ipmi://ADMIN@bmc.example:443?vendor=supermicro
//
// The password comes from backend.Secrets (a file or the environment on
// the server), never from the URL. Opening a target runs the vendor's
// Driver: it logs in to the web interface once (never retrying a rejected
// password: BMCs lock accounts), arms the KVM (a JNLP launch file or the
// HTML5 console's per-launch token) and returns a Launch saying how to
// reach the KVM server and with which protocol and credentials. The
// protocol client then becomes the backend.Console, so a new vendor (AMI
// MegaRAC, ...) is a new Driver and perhaps a new protocol, never a change
// to the session hub or the transports.
//
// Query parameters understood for every vendor:
//
//	vendor=NAME       the driver (required; see Drivers)
//	insecure=1        accept any TLS certificate (BMCs ship self-signed ones)
//	tls=legacy        allow TLS 1.0/1.1 and old CBC/RSA cipher suites, for
//	                  this target only, for old BMC web servers
//	web=http          use plain HTTP for the web interface
//	profile=NAME      the KVM protocol's firmware profile (aten: ast2400, x9, aten1)
//	msglen=T:L,...    override message lengths of the profile
//	mouse=absolute|relative|keep
//	keepalive=15s     interval of the client's keepalive messages
//
// Drivers may define more (supermicro: console=jnlp|html5|auto,
// login=plain|base64|auto, kvmport=N).
package ipmi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"kvmgate/backend"
	"kvmgate/framebuffer"
	"kvmgate/rfb/aten"
)

// Scheme is the URL scheme of BMC targets.
const Scheme = "ipmi"

func init() {
	backend.Register(Scheme, open)
}

// Target is a parsed ipmi:// target with its credentials, handed to a
// Driver.
type Target struct {
	// Host is the BMC web interface's host or host:port.
	Host string
	// Hostname is Host without the port.
	Hostname string
	// Username and Password are the BMC account. Password is never logged.
	Username, Password string
	// Vendor names the driver.
	Vendor string
	// Query holds the target's query parameters.
	Query url.Values
	// Scheme is "https" (default) or "http" for the web interface.
	Scheme string
	// TLS is the TLS configuration for this target's web interface and
	// KVM connections (verification on unless insecure=1; legacy versions
	// only with tls=legacy).
	TLS *tls.Config
	// HTTP is a client with a cookie jar and TLS set up for this target.
	HTTP *http.Client
	// Logger receives one line per step; never secrets.
	Logger *slog.Logger
}

// BaseURL returns the web interface's root URL, e.g. "https://10.0.0.5".
func (t *Target) BaseURL() string { return t.Scheme + "://" + t.Host }

// Launch is what arming a BMC console produced: how to reach its KVM
// server and how to speak to it.
type Launch struct {
	// Protocol is the KVM protocol; "aten" is built in.
	Protocol string
	// Dial connects the transport (TCP, TLS or a WebSocket stream).
	Dial func(ctx context.Context) (net.Conn, error)
	// Username and Password are the KVM credentials (often per launch).
	Username, Password string
	// Details describe the launch for Info (no secrets).
	Details map[string]string
	// Logout, if set, ends the web session when the console closes.
	Logout func()
}

// Driver arms the consoles of one BMC vendor.
type Driver interface {
	// Arm logs in to the BMC once and prepares a KVM launch. It must not
	// retry a rejected password.
	Arm(ctx context.Context, t *Target) (*Launch, error)
}

// ErrLogin is wrapped by errors for credentials the BMC rejected.
var ErrLogin = errors.New("ipmi: the BMC rejected the login (not retried: BMCs lock accounts)")

var (
	mu      sync.RWMutex
	drivers = map[string]Driver{}
)

// Register makes a vendor's driver available under name, from the vendor
// package's init function.
func Register(name string, d Driver) {
	mu.Lock()
	defer mu.Unlock()
	drivers[name] = d
}

// Drivers lists the registered vendor names.
func Drivers() []string {
	mu.RLock()
	defer mu.RUnlock()
	names := make([]string, 0, len(drivers))
	for n := range drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ParseTarget builds a Target from an ipmi:// URL and the secrets.
func ParseTarget(u *url.URL, secrets backend.Secrets) (*Target, error) {
	if u.Scheme != Scheme {
		return nil, fmt.Errorf("ipmi: target scheme %q, want %s://", u.Scheme, Scheme)
	}
	if _, has := u.User.Password(); has {
		return nil, fmt.Errorf("ipmi: target %q carries a password; give it in a file or the environment", u.Redacted())
	}
	q := u.Query()
	t := &Target{Host: u.Host, Hostname: u.Hostname(), Vendor: q.Get("vendor"), Query: q, Scheme: "https"}
	if t.Hostname == "" {
		return nil, fmt.Errorf("ipmi: target %q has no host", u.Redacted())
	}
	if t.Vendor == "" {
		return nil, fmt.Errorf("ipmi: target %q names no vendor (add ?vendor=, known: %v)", u.Redacted(), Drivers())
	}
	t.Username = secrets.Username
	if u.User != nil && u.User.Username() != "" {
		t.Username = u.User.Username()
	}
	if t.Username == "" {
		return nil, fmt.Errorf("ipmi: target %q names no user (ipmi://USER@HOST)", u.Redacted())
	}
	t.Password = secrets.Password
	switch q.Get("web") {
	case "", "https":
	case "http":
		t.Scheme = "http"
	default:
		return nil, fmt.Errorf("ipmi: bad web=%q: want https or http", q.Get("web"))
	}
	conf, err := TLSConfig(t.Hostname, q)
	if err != nil {
		return nil, err
	}
	t.TLS = conf
	jar, _ := cookiejar.New(nil)
	t.HTTP = &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     conf,
			Proxy:               nil,
			TLSHandshakeTimeout: 15 * time.Second,
			MaxIdleConnsPerHost: 2,
		},
	}
	return t, nil
}

// TLSConfig returns the TLS configuration a target's query asks for:
// certificate verification unless insecure=1, TLS 1.2 and later unless
// tls=legacy, which allows TLS 1.0 and old cipher suites for this target
// only.
func TLSConfig(serverName string, q url.Values) (*tls.Config, error) {
	conf := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	switch v := q.Get("insecure"); v {
	case "", "0", "false", "no":
	case "1", "true", "yes":
		conf.InsecureSkipVerify = true
	default:
		return nil, fmt.Errorf("ipmi: bad insecure=%q: want 1 or 0", v)
	}
	switch v := q.Get("tls"); v {
	case "", "modern":
	case "legacy":
		conf.MinVersion = tls.VersionTLS10
		conf.CipherSuites = LegacyCipherSuites()
	default:
		return nil, fmt.Errorf("ipmi: bad tls=%q: want modern or legacy", v)
	}
	return conf, nil
}

// LegacyCipherSuites returns Go's secure suites followed by the insecure
// CBC and RSA key-exchange suites old BMC web servers (lighttpd with
// OpenSSL 0.9/1.0 on X9 boards) still need.
func LegacyCipherSuites() []uint16 {
	var ids []uint16
	for _, s := range tls.CipherSuites() {
		ids = append(ids, s.ID)
	}
	for _, s := range tls.InsecureCipherSuites() {
		if strings.Contains(s.Name, "_RC4_") {
			continue // broken beyond use
		}
		ids = append(ids, s.ID)
	}
	return ids
}

func open(ctx context.Context, u *url.URL, secrets backend.Secrets) (backend.Console, error) {
	t, err := ParseTarget(u, secrets)
	if err != nil {
		return nil, err
	}
	mu.RLock()
	d, ok := drivers[t.Vendor]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("ipmi: unknown vendor %q (known: %v; is its package linked in?)", t.Vendor, Drivers())
	}
	t.Logger = slog.Default().With("bmc", t.Host, "vendor", t.Vendor)
	return Open(ctx, d, t)
}

// Open arms the console with d and connects its KVM protocol.
func Open(ctx context.Context, d Driver, t *Target) (backend.Console, error) {
	if t.Logger == nil {
		t.Logger = slog.New(slog.DiscardHandler)
	}
	l, err := d.Arm(ctx, t)
	if err != nil {
		return nil, err
	}
	c, err := connect(ctx, t, l)
	if err != nil {
		if l.Logout != nil {
			l.Logout()
		}
		return nil, err
	}
	return c, nil
}

func connect(ctx context.Context, t *Target, l *Launch) (backend.Console, error) {
	switch l.Protocol {
	case "aten":
	default:
		return nil, fmt.Errorf("ipmi: unknown KVM protocol %q", l.Protocol)
	}
	prof, err := aten.ParseProfile(t.Query.Get("profile"), t.Query.Get("msglen"))
	if err != nil {
		return nil, err
	}
	opts := aten.Options{Username: l.Username, Password: l.Password, Profile: prof, Logger: t.Logger, MouseMode: aten.MouseAbsolute}
	switch v := t.Query.Get("mouse"); v {
	case "", "absolute":
	case "relative":
		opts.MouseMode = aten.MouseRelative
	case "keep":
		opts.MouseMode = aten.MouseKeep
	default:
		return nil, fmt.Errorf("ipmi: bad mouse=%q: want absolute, relative or keep", v)
	}
	if v := t.Query.Get("keepalive"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Millisecond {
			return nil, fmt.Errorf("ipmi: bad keepalive=%q: want a duration of at least 10ms", v)
		}
		opts.KeepAlive = d
	}
	conn, err := l.Dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("ipmi: connect to the KVM of %s: %w", t.Host, err)
	}
	c, err := aten.NewClient(ctx, conn, opts)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ipmi: KVM of %s: %w", t.Host, err)
	}
	return &console{Client: c, details: l.Details, logout: l.Logout}, nil
}

// console adds the launch's details and the web logout to the protocol
// client.
type console struct {
	*aten.Client
	details   map[string]string
	logout    func()
	closeOnce sync.Once
}

// Info adds how the console was armed to the protocol's description.
func (c *console) Info() backend.Info {
	info := c.Client.Info()
	info.Protocol = "ipmi/" + info.Protocol
	for k, v := range c.details {
		info.Details[k] = v
	}
	return info
}

// Close ends the KVM connection and the web session.
func (c *console) Close() error {
	err := c.Client.Close()
	c.closeOnce.Do(func() {
		if c.logout != nil {
			go c.logout()
		}
	})
	return err
}

// Run runs the protocol client and logs out of the web session after.
func (c *console) Run(ctx context.Context, fb *framebuffer.Framebuffer) error {
	defer c.Close()
	return c.Client.Run(ctx, fb)
}
