package rfb

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"kvmgate/backend"
	"kvmgate/input"
)

// errUnsupported is wrapped by errors for features the server lacks.
var errUnsupported = backend.ErrUnsupported

var (
	_ backend.Console = (*Client)(nil)
	_ backend.Resizer = (*Client)(nil)
)

func init() {
	backend.Register("vnc", openTarget)
}

// DefaultPort is the RFB port used when a target names none.
const DefaultPort = 5900

// OptionsFromURL builds Options for a vnc:// target. The port defaults to
// 5900 (a port number, never a display number). Query parameters:
// encodings=zrle,hextile (preference order), shared=0 (exclusive session),
// quality=0..9 and compress=0..9, tls=verify|insecure (prefer VeNCrypt
// X509; insecure accepts any certificate). It returns the address to dial.
func OptionsFromURL(u *url.URL, secrets backend.Secrets) (string, Options, error) {
	opts := NewOptions()
	opts.Username, opts.Password = secrets.Username, secrets.Password
	if opts.Username == "" && u.User != nil {
		opts.Username = u.User.Username()
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return "", opts, fmt.Errorf("rfb: target %q has no host", u.Redacted())
	}
	if port == "" {
		port = strconv.Itoa(DefaultPort)
	}
	q := u.Query()
	if v := q.Get("encodings"); v != "" {
		encs, err := ParseEncodings(v)
		if err != nil {
			return "", opts, err
		}
		opts.Encodings = encs
	}
	switch q.Get("shared") {
	case "", "1", "true", "yes":
	case "0", "false", "no":
		opts.Exclusive = true
	default:
		return "", opts, fmt.Errorf("rfb: bad shared=%q in target", q.Get("shared"))
	}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"quality", &opts.QualityLevel}, {"compress", &opts.CompressLevel}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 9 {
				return "", opts, fmt.Errorf("rfb: bad %s=%q in target: want 0-9", p.name, v)
			}
			*p.dst = n
		}
	}
	switch q.Get("tls") {
	case "":
	case "verify":
		opts.TLSConfig = &tls.Config{}
	case "insecure":
		opts.TLSInsecure = true
	default:
		return "", opts, fmt.Errorf("rfb: bad tls=%q in target: want verify or insecure", q.Get("tls"))
	}
	return net.JoinHostPort(host, port), opts, nil
}

// ParseEncodings parses a comma-separated list of encoding names such as
// "zrle,hextile,raw".
func ParseEncodings(list string) ([]Encoding, error) {
	var encs []Encoding
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(strings.ToLower(name))
		if name == "" {
			continue
		}
		e, ok := ParseEncoding(name)
		if !ok {
			return nil, fmt.Errorf("rfb: unknown encoding %q", name)
		}
		if !SupportedEncoding(e) {
			return nil, fmt.Errorf("rfb: encoding %q is not a pixel encoding kvmgate decodes", name)
		}
		encs = append(encs, e)
	}
	if len(encs) == 0 {
		return nil, fmt.Errorf("rfb: empty encoding list %q", list)
	}
	return encs, nil
}

func openTarget(ctx context.Context, u *url.URL, secrets backend.Secrets) (backend.Console, error) {
	addr, opts, err := OptionsFromURL(u, secrets)
	if err != nil {
		return nil, err
	}
	return Dial(ctx, addr, opts)
}

// Info describes the connection; it never includes credentials.
func (c *Client) Info() backend.Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	info := backend.Info{
		Protocol: "rfb",
		Server:   c.banner,
		Name:     c.name,
		Details: map[string]string{
			"version":      c.version,
			"security":     c.security,
			"size":         fmt.Sprintf("%dx%d", c.width, c.height),
			"pixel_format": c.pf.String(),
			"pointer":      "absolute",
			"keys":         "keysym",
		},
	}
	if c.relative {
		info.Details["pointer"] = "relative"
	}
	if c.qemuKeys {
		info.Details["keys"] = "qemu-extended"
	}
	if c.ledsKnown {
		info.Details["leds"] = c.leds.String()
	}
	if c.cuActive {
		info.Details["updates"] = "continuous"
	} else {
		info.Details["updates"] = "requested"
	}
	if c.clip.ext {
		info.Details["clipboard"] = "extended"
	}
	if c.xvpVersion > 0 {
		info.Actions = []string{string(input.ActionShutdown), string(input.ActionReboot), string(input.ActionReset)}
	}
	var encs []string
	for _, e := range c.encs {
		if SupportedEncoding(e) {
			encs = append(encs, e.String())
		}
	}
	info.Details["encodings"] = strings.Join(encs, ",")
	return info
}
