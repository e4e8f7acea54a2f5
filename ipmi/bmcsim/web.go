package bmcsim

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"

	"github.com/gorilla/websocket"

	"kvmgate/ipmi"
)

// WebOptions configure the simulated web interface.
type WebOptions struct {
	// Username and Password are the BMC account.
	Username, Password string
	// Base64Login makes the login page encode the form fields in base64
	// (and the server expect them so).
	Base64Login bool
	// JNLPArgs is the JNLP layout: 10 (X9), 22 (X10/X11) or 0 for none
	// (HTML5-only firmware answers 404).
	JNLPArgs int
	// URLName is the url_name that returns the JNLP ("man_ikvm" or "ikvm").
	URLName string
	// HTML5 offers the Redfish IKVM launch and the KVM over WebSocket at /.
	HTML5 bool
	// LegacyTLS makes the server speak only TLS 1.0 with an old CBC suite.
	LegacyTLS bool
	// KVMPort is the port the JNLP names (the simulator's KVM listener by
	// default).
	KVMPort int
}

// Web is the simulated BMC web server with its KVM server.
type Web struct {
	*httptest.Server
	KVM     *KVM
	KVMAddr string // the KVM's TCP listener
	opts    WebOptions
	kvmL    net.Listener

	mu sync.Mutex
	// mu guards the following.
	logins   []Login
	sids     map[string]bool
	requests []string // METHOD path?query, in order
	referers map[string]string
	logouts  int
}

// Login is one login attempt as the server saw it.
type Login struct {
	Name, Password string // decoded form values
	OK             bool
}

// NewWeb starts the web server (TLS) and the KVM's TCP listener on
// loopback. Close stops both.
func NewWeb(opts WebOptions, kvm *KVM) (*Web, error) {
	if opts.URLName == "" {
		opts.URLName = "man_ikvm"
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	w := &Web{KVM: kvm, KVMAddr: l.Addr().String(), opts: opts, kvmL: l, sids: map[string]bool{}, referers: map[string]string{}}
	go kvm.Serve(l)
	mux := http.NewServeMux()
	mux.HandleFunc("/", w.root)
	mux.HandleFunc("/cgi/login.cgi", w.login)
	mux.HandleFunc("/cgi/logout.cgi", w.logout)
	mux.HandleFunc("/cgi/url_redirect.cgi", w.redirect)
	mux.HandleFunc("/redfish/v1/Managers/1/Oem/Supermicro/IKVM", w.redfish)
	w.Server = httptest.NewUnstartedServer(w.logged(mux))
	if opts.LegacyTLS {
		w.Server.TLS = &tls.Config{
			MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10,
			CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA},
		}
	}
	w.Server.StartTLS()
	return w, nil
}

// Close stops the web server and the KVM listener.
func (w *Web) Close() {
	w.kvmL.Close()
	w.Server.Close()
}

// Host returns the web server's host:port.
func (w *Web) Host() string { return strings.TrimPrefix(w.URL, "https://") }

// Logins returns the login attempts.
func (w *Web) Logins() []Login {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Login(nil), w.logins...)
}

// Requests returns the requests seen, as "METHOD /path?query".
func (w *Web) Requests() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.requests...)
}

// Referer returns the Referer of the last request for path.
func (w *Web) Referer(path string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.referers[path]
}

// Logouts returns the number of logout requests.
func (w *Web) Logouts() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.logouts
}

func (w *Web) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		w.requests = append(w.requests, r.Method+" "+r.URL.RequestURI())
		w.referers[r.URL.Path] = r.Referer()
		w.mu.Unlock()
		h.ServeHTTP(rw, r)
	})
}

func token(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

func (w *Web) session(r *http.Request) bool {
	c, err := r.Cookie("SID")
	if err != nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sids[c.Value]
}

func (w *Web) root(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/" && websocket.IsWebSocketUpgrade(r) && w.opts.HTML5 {
		w.websocket(rw, r)
		return
	}
	if r.URL.Path != "/" {
		w.ikvmPage(rw, r)
		return
	}
	js := `document.forms[0].submit();`
	if w.opts.Base64Login {
		js = `name.value = btoa(name.value); pwd.value = btoa(pwd.value); document.forms[0].submit();`
	}
	fmt.Fprintf(rw, `<html><body><form method="post" action="/cgi/login.cgi"><input name="name"><input name="pwd" type="password"></form><script>function doLogin(){ %s }</script></body></html>`, js)
}

func (w *Web) login(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(rw, "POST only", http.StatusMethodNotAllowed)
		return
	}
	name, pwd := r.PostFormValue("name"), r.PostFormValue("pwd")
	if w.opts.Base64Login {
		n, err1 := base64.StdEncoding.DecodeString(name)
		p, err2 := base64.StdEncoding.DecodeString(pwd)
		if err1 != nil || err2 != nil {
			name, pwd = "\x00bad base64", ""
		} else {
			name, pwd = string(n), string(p)
		}
	}
	ok := name == w.opts.Username && pwd == w.opts.Password
	w.mu.Lock()
	w.logins = append(w.logins, Login{Name: name, Password: pwd, OK: ok})
	sid := ""
	if ok {
		sid = token(16)
		w.sids[sid] = true
	}
	w.mu.Unlock()
	if !ok {
		// Supermicro answers 200 with an error page and no cookie.
		fmt.Fprint(rw, `<html><body><script>alert("ERROR: Invalid Username or Password");</script></body></html>`)
		return
	}
	http.SetCookie(rw, &http.Cookie{Name: "SID", Value: sid, Path: "/"})
	fmt.Fprint(rw, `<html><head><meta http-equiv="refresh" content="0; url=/cgi/url_redirect.cgi?url_name=mainmenu"></head></html>`)
}

func (w *Web) logout(rw http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie("SID"); err == nil {
		w.mu.Lock()
		delete(w.sids, c.Value)
		w.logouts++
		w.mu.Unlock()
	}
	http.SetCookie(rw, &http.Cookie{Name: "SID", Value: "", Path: "/", MaxAge: -1})
	fmt.Fprint(rw, "<html></html>")
}

func (w *Web) redirect(rw http.ResponseWriter, r *http.Request) {
	if !w.session(r) {
		http.Redirect(rw, r, "/", http.StatusFound)
		return
	}
	q := r.URL.Query()
	if q.Get("url_type") != "jwsk" || q.Get("url_name") != w.opts.URLName || w.opts.JNLPArgs == 0 {
		http.NotFound(rw, r)
		return
	}
	if !strings.Contains(r.Referer(), "url_redirect.cgi") {
		http.Error(rw, "no referer", http.StatusForbidden)
		return
	}
	user, pass := token(10), token(10)
	w.KVM.Accept(Credentials{User: user, Password: pass})
	port := w.opts.KVMPort
	if port == 0 {
		_, p, _ := net.SplitHostPort(w.KVMAddr)
		port, _ = strconv.Atoi(p)
	}
	rw.Header().Set("Content-Type", "application/x-java-jnlp-file")
	rw.Write(JNLP(w.opts.JNLPArgs, "127.0.0.1", user, pass, port))
}

// JNLP renders a Supermicro iKVM JNLP in the 10- or 22-argument layout.
func JNLP(layout int, host, user, pass string, kvmPort int) []byte {
	args := []string{host, user, pass, "null", strconv.Itoa(kvmPort), "623", "2", "0", "0", "3520"}
	if layout == 22 {
		args = []string{host, user, pass, "null", strconv.Itoa(kvmPort), "623", "0", "0", "1", "5900",
			"623", "0", "1", "1", "0", "0", "0", "1", "EN", "0", "[SMC]X11SSH-F", "1"}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<jnlp spec="1.0+" codebase="https://%s:443/">
  <information><title>ATEN Java iKVM Viewer</title><vendor>ATEN</vendor></information>
  <resources>
    <j2se version="1.6.0+" initial-heap-size="128M" max-heap-size="128M"/>
    <jar href="iKVM__V1.69.38.0x0.jar" download="eager" main="true"/>
  </resources>
  <application-desc main-class="tw.com.aten.ikvm.KVMMain">
`, host)
	for _, a := range args {
		fmt.Fprintf(&b, "    <argument>%s</argument>\n", a)
	}
	b.WriteString("  </application-desc>\n</jnlp>\n")
	return []byte(b.String())
}

func (w *Web) redfish(rw http.ResponseWriter, r *http.Request) {
	u, p, ok := r.BasicAuth()
	if !w.opts.HTML5 {
		http.NotFound(rw, r)
		return
	}
	if !ok || u != w.opts.Username || p != w.opts.Password {
		w.mu.Lock()
		w.logins = append(w.logins, Login{Name: u, Password: p, OK: false})
		w.mu.Unlock()
		http.Error(rw, `{"error":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(rw, `{"@odata.type":"#SmcIKVM.v1_0_0.SmcIKVM","URI":"/redfish/%s.IKVM"}`, token(12))
}

func (w *Web) ikvmPage(rw http.ResponseWriter, r *http.Request) {
	if !w.opts.HTML5 || !strings.HasSuffix(r.URL.Path, ".IKVM") || !w.session(r) {
		http.NotFound(rw, r)
		return
	}
	tok := token(16)
	w.KVM.Accept(Credentials{User: tok, Password: tok})
	fmt.Fprintf(rw, `<html><head><script>var ikvm_token = "%s"; var host = location.host;</script></head><body><canvas id="kvm"></canvas></body></html>`, tok)
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (w *Web) websocket(rw http.ResponseWriter, r *http.Request) {
	if !w.session(r) {
		http.Error(rw, "no session", http.StatusForbidden)
		return
	}
	ws, err := upgrader.Upgrade(rw, r, nil)
	if err != nil {
		return
	}
	w.KVM.ServeConn(ipmi.NewWSConn(ws))
}
