// Package supermicro is kvmgate's BMC driver for Supermicro boards (ATEN
// iKVM firmware on X9, X10 and X11, and the HTML5 console of later
// firmware). Importing it registers vendor=supermicro for ipmi:// targets.
//
// Arming a console takes one web login (POST /cgi/login.cgi with the form
// fields name and pwd, base64-encoded when the firmware's login page
// encodes them, answered by a SID cookie) and then either
//
//   - the Java launch: GET /cgi/url_redirect.cgi?url_name=man_ikvm (or
//     ikvm) &url_type=jwsk with the Referer the web UI sends, whose JNLP
//     names the KVM port and per-launch credentials (ParseJNLP), then ATEN
//     RFB over TCP; or
//   - the HTML5 launch: GET /redfish/v1/Managers/1/Oem/Supermicro/IKVM,
//     whose URI leads to a page with the per-launch token, then ATEN RFB
//     inside a WebSocket at wss://BMC/ authenticated by the SID cookie.
//
// Target parameters besides ipmi's: console=auto|jnlp|html5 (auto tries
// the JNLP, then HTML5), login=auto|plain|base64, kvmport=N (instead of the
// JNLP's), kvmtls=1 (TLS from the first byte on the KVM port, as some
// newer firmware wants).
package supermicro

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"kvmgate/ipmi"
)

// Vendor is the name this driver registers.
const Vendor = "supermicro"

func init() {
	ipmi.Register(Vendor, Driver{})
}

// Driver arms Supermicro consoles. The zero value is ready to use.
type Driver struct{}

// Paths on the BMC's web server.
const (
	PathLogin    = "/cgi/login.cgi"
	PathLogout   = "/cgi/logout.cgi"
	PathRedirect = "/cgi/url_redirect.cgi"
	PathIKVM     = "/redfish/v1/Managers/1/Oem/Supermicro/IKVM"
)

// JNLPNames are the url_name values that return the iKVM JNLP, tried in
// order (X10/X11 firmware uses man_ikvm, X9 ikvm).
var JNLPNames = []string{"man_ikvm", "ikvm"}

// maxBody bounds the web responses read.
const maxBody = 1 << 20

// errNotFound marks a launch path the firmware does not have.
var errNotFound = errors.New("not offered by this firmware")

// Arm logs in once and prepares the KVM launch.
func (Driver) Arm(ctx context.Context, t *ipmi.Target) (*ipmi.Launch, error) {
	mode := t.Query.Get("console")
	switch mode {
	case "":
		mode = "auto"
	case "auto", "jnlp", "html5":
	default:
		return nil, fmt.Errorf("supermicro: bad console=%q: want auto, jnlp or html5", mode)
	}
	sid, err := Login(ctx, t)
	if err != nil {
		return nil, err
	}
	logout := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.BaseURL()+PathLogout, nil)
		if err == nil {
			if resp, err := t.HTTP.Do(req); err == nil {
				io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
				resp.Body.Close()
			}
		}
	}
	var l *ipmi.Launch
	if mode == "auto" || mode == "jnlp" {
		l, err = armJNLP(ctx, t)
		if err == nil || mode == "jnlp" || !errors.Is(err, errNotFound) {
			if err != nil {
				logout()
				return nil, err
			}
			l.Logout = logout
			return l, nil
		}
		t.Logger.Info("supermicro: no JNLP, trying the HTML5 console", "err", err)
	}
	l, err = armHTML5(ctx, t, sid)
	if err != nil {
		logout()
		return nil, err
	}
	l.Logout = logout
	return l, nil
}

// LoginUsesBase64 reports whether a login page encodes the form fields in
// base64 before posting them (newer X11 firmware does, in JavaScript).
func LoginUsesBase64(page []byte) bool {
	p := strings.ToLower(string(page))
	return strings.Contains(p, "btoa(") || strings.Contains(p, "base64.encode(")
}

// Login posts the credentials once and returns the SID cookie. A rejected
// password returns an error wrapping ipmi.ErrLogin and is not retried.
func Login(ctx context.Context, t *ipmi.Target) (string, error) {
	b64 := false
	switch v := t.Query.Get("login"); v {
	case "plain":
	case "base64":
		b64 = true
	case "", "auto":
		page, status, err := get(ctx, t, "/", nil)
		if err != nil {
			return "", fmt.Errorf("supermicro: login page: %w", err)
		}
		if status == http.StatusOK {
			b64 = LoginUsesBase64(page)
		}
	default:
		return "", fmt.Errorf("supermicro: bad login=%q: want auto, plain or base64", v)
	}
	name, pwd := t.Username, t.Password
	if b64 {
		name = base64.StdEncoding.EncodeToString([]byte(name))
		pwd = base64.StdEncoding.EncodeToString([]byte(pwd))
	}
	form := url.Values{"name": {name}, "pwd": {pwd}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.BaseURL()+PathLogin, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("supermicro: login: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Referer", t.BaseURL()+"/")
	resp, err := t.HTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("supermicro: login at %s: %w", t.Host, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	sid := ""
	for _, c := range resp.Cookies() {
		if c.Name == "SID" && c.Value != "" && c.MaxAge >= 0 {
			sid = c.Value
		}
	}
	if sid == "" {
		t.Logger.Warn("supermicro: login rejected", "user", t.Username, "status", resp.StatusCode, "base64", b64)
		return "", fmt.Errorf("supermicro: login as %q at %s (HTTP %d, no SID cookie): %w", t.Username, t.Host, resp.StatusCode, ipmi.ErrLogin)
	}
	t.Logger.Info("supermicro: logged in", "user", t.Username, "base64", b64)
	return sid, nil
}

// get fetches path with the target's cookies and extra headers.
func get(ctx context.Context, t *ipmi.Target, path string, header http.Header) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.BaseURL()+path, nil)
	if err != nil {
		return nil, 0, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := t.HTTP.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return body, resp.StatusCode, err
}

func armJNLP(ctx context.Context, t *ipmi.Target) (*ipmi.Launch, error) {
	var last error = errNotFound
	for _, name := range JNLPNames {
		path := PathRedirect + "?url_name=" + name + "&url_type=jwsk"
		body, status, err := get(ctx, t, path, http.Header{"Referer": {t.BaseURL() + PathRedirect + "?url_name=" + name}})
		if err != nil {
			return nil, fmt.Errorf("supermicro: fetching the iKVM JNLP: %w", err)
		}
		if status != http.StatusOK || !strings.Contains(string(body), "<jnlp") {
			last = fmt.Errorf("supermicro: url_name=%s: HTTP %d: %w", name, status, errNotFound)
			continue
		}
		j, err := ParseJNLP(body)
		if err != nil {
			return nil, err
		}
		kport := j.KVMPort
		if v := t.Query.Get("kvmport"); v != "" {
			if kport, err = port(v); err != nil {
				return nil, fmt.Errorf("supermicro: bad kvmport: %w", err)
			}
		}
		// The JNLP names the BMC as it sees itself; behind NAT that
		// address is unreachable, so dial the host the web login used.
		addr := net.JoinHostPort(t.Hostname, strconv.Itoa(kport))
		kvmTLS := t.Query.Get("kvmtls") == "1"
		t.Logger.Info("supermicro: JNLP armed", "layout", j.Layout, "kvm", addr, "jar", j.Jar)
		return &ipmi.Launch{
			Protocol: "aten",
			Username: j.User, Password: j.Password,
			Dial: func(ctx context.Context) (net.Conn, error) {
				var d net.Dialer
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil || !kvmTLS {
					return c, err
				}
				tc := tls.Client(c, t.TLS)
				if err := tc.HandshakeContext(ctx); err != nil {
					c.Close()
					return nil, fmt.Errorf("TLS to the KVM port: %w", err)
				}
				return tc, nil
			},
			Details: map[string]string{
				"console": "jnlp", "jnlp_layout": strconv.Itoa(j.Layout), "jnlp_host": j.Host,
				"kvm": addr, "jar": j.Jar,
			},
		}, nil
	}
	return nil, last
}

// tokenRE finds the per-launch token on the HTML5 console page.
var tokenRE = regexp.MustCompile(`(?i)\b(?:ikvm_?token|token)\b["']?\s*[:=]\s*["']([A-Za-z0-9+/=_.-]{4,64})["']`)

// ParseIKVMPage returns the per-launch token on the HTML5 console page, or
// "" if the page carries none.
func ParseIKVMPage(page []byte) string {
	m := tokenRE.FindSubmatch(page)
	if m == nil {
		return ""
	}
	return string(m[1])
}

func armHTML5(ctx context.Context, t *ipmi.Target, sid string) (*ipmi.Launch, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.BaseURL()+PathIKVM, nil)
	if err != nil {
		return nil, err
	}
	// Redfish wants its own authentication; the password has just been
	// accepted by the web login, so this is not a guess.
	req.SetBasicAuth(t.Username, t.Password)
	resp, err := t.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("supermicro: Redfish IKVM: %w", err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("supermicro: Redfish IKVM: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("supermicro: Redfish IKVM: HTTP %d (no HTML5 console, or no KVM licence)", resp.StatusCode)
	}
	var ref struct {
		URI string `json:"URI"`
	}
	if err := json.Unmarshal(body, &ref); err != nil || !strings.HasPrefix(ref.URI, "/") {
		return nil, fmt.Errorf("supermicro: Redfish IKVM answer has no console URI")
	}
	page, status, err := get(ctx, t, ref.URI, nil)
	if err != nil {
		return nil, fmt.Errorf("supermicro: HTML5 console page: %w", err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("supermicro: HTML5 console page: HTTP %d", status)
	}
	token := ParseIKVMPage(page)
	cred := token
	if cred == "" {
		cred = sid // older HTML5 firmware takes the web session in both fields
	}
	if len(cred) > 24 {
		return nil, fmt.Errorf("supermicro: HTML5 console token is %d bytes, longer than the protocol's 24", len(cred))
	}
	wsScheme := "wss"
	if t.Scheme == "http" {
		wsScheme = "ws"
	}
	wsURL := wsScheme + "://" + t.Host + "/"
	t.Logger.Info("supermicro: HTML5 console armed", "token", token != "")
	return &ipmi.Launch{
		Protocol: "aten",
		Username: cred, Password: cred,
		Dial: func(ctx context.Context) (net.Conn, error) {
			h := http.Header{"Cookie": {"SID=" + sid}, "Origin": {t.BaseURL()}}
			return ipmi.DialWebSocket(ctx, wsURL, h, t.TLS)
		},
		Details: map[string]string{"console": "html5", "kvm": wsURL},
	}, nil
}
