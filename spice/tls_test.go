package spice

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"kvmgate/backend"
	"kvmgate/framebuffer"
	"kvmgate/internal/testserver"
)

// testPKI writes a CA and a server certificate for 127.0.0.1 into dir
// under the names QEMU's x509-dir wants, and returns the CA pool.
func testPKI(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kvmgate test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, blk := range map[string]*pem.Block{
		"ca-cert.pem":     {Type: "CERTIFICATE", Bytes: caDER},
		"server-cert.pem": {Type: "CERTIFICATE", Bytes: der},
		"server-key.pem":  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(blk), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestTLSMainChannel runs QEMU with a TLS-only main channel: the client
// links main over TLS after the plain port's NEED_SECURED, the other
// channels in plain text, and decodes the SeaBIOS screen.
func TestTLSMainChannel(t *testing.T) {
	dir := t.TempDir()
	pool := testPKI(t, dir)
	tlsPort := freePort(t)
	q, addr := spiceQEMU(t, "disable-ticketing=on,tls-port="+strconv.Itoa(tlsPort)+",x509-dir="+dir+",tls-channel=main")
	ctx := context.Background()

	// Without the TLS port the refusal says why.
	_, err := Dial(ctx, addr, Options{})
	var le *LinkError
	if !errors.As(err, &le) || le.Code != LinkErrNeedSecured {
		t.Fatalf("plain main channel: got %v, want NEED_SECURED", err)
	}
	// A certificate from another CA is refused.
	_, err = Dial(ctx, addr, Options{TLSPort: tlsPort})
	var uae x509.UnknownAuthorityError
	if !errors.As(err, &uae) {
		t.Fatalf("unknown CA: got %v, want x509.UnknownAuthorityError", err)
	}

	q.WaitSettled(t, time.Minute)
	// A second SPICE client takes the session away from the first, so the
	// two clients run one after the other.
	c, err := Dial(ctx, addr, Options{TLSPort: tlsPort, TLSConfig: &tls.Config{RootCAs: pool}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	runUntilFrame(t, c, q)
	if !c.Secure(ChannelMain) || c.Secure(ChannelDisplay) {
		t.Errorf("main over TLS %v, display over TLS %v; want true, false", c.Secure(ChannelMain), c.Secure(ChannelDisplay))
	}
	if c.Info().Details["tls"] != "true" {
		t.Errorf("Info details %v: want tls=true", c.Info().Details)
	}

	// The target URL form, TLS only (no plain port), with ca-file.
	ca := filepath.Join(dir, "ca-cert.pem")
	target := "spice://127.0.0.1?tls-port=" + strconv.Itoa(tlsPort) + "&ca-file=" + url.QueryEscape(ca)
	con, err := backend.Open(ctx, target, backend.Secrets{})
	if err != nil {
		t.Fatalf("open %s: %v", target, err)
	}
	sc := con.(*Client)
	runUntilFrame(t, sc, q)
	if !sc.Secure(ChannelMain) || !sc.Secure(ChannelDisplay) {
		t.Errorf("TLS-only target: main over TLS %v, display %v; want both", sc.Secure(ChannelMain), sc.Secure(ChannelDisplay))
	}
}

// runUntilFrame runs c until its screen equals QEMU's screendump, then
// stops it and checks that Run returned cleanly.
func runUntilFrame(t *testing.T, c *Client, q *testserver.QEMU) {
	t.Helper()
	defer c.Close()
	fb := framebuffer.New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, fb) }()
	waitFrame(t, fb, screendump(t, q), 30*time.Second)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("Run did not return after cancel")
	}
}

func TestOptionsFromURLTLS(t *testing.T) {
	dir := t.TempDir()
	testPKI(t, dir)
	ca := filepath.Join(dir, "ca-cert.pem")
	for _, tc := range []struct {
		url      string
		addr     string
		tlsPort  int
		tlsOnly  bool
		insecure bool
		roots    bool
		err      string
	}{
		{url: "spice://h:5930", addr: "h:5930"},
		{url: "spice://h:5930?tls-port=5931", addr: "h:5930", tlsPort: 5931},
		{url: "spice://h?tls-port=5931&insecure=1", addr: "h:5900", tlsPort: 5931, tlsOnly: true, insecure: true},
		{url: "spice://h:1?tls-port=2&ca-file=" + ca, addr: "h:1", tlsPort: 2, roots: true},
		{url: "spice://h?tls-port=x", err: "not a port number"},
		{url: "spice://h?tls-port=70000", err: "not a port number"},
		{url: "spice://h?insecure=1", err: "needs tls-port"},
		{url: "spice://h?tls-port=1&insecure=yes", err: "want 0 or 1"},
		{url: "spice://h?tls-port=1&ca-file=" + filepath.Join(dir, "server-key.pem"), err: "no PEM certificate"},
		{url: "spice://h?tls-port=1&ca-file=" + filepath.Join(dir, "missing"), err: "ca-file"},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		addr, opts, err := OptionsFromURL(u, backend.Secrets{})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: got error %v, want %q", tc.url, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if addr != tc.addr || opts.TLSPort != tc.tlsPort || opts.TLSOnly != tc.tlsOnly {
			t.Errorf("%s: addr %s, tls port %d, TLS only %v; want %s, %d, %v", tc.url, addr, opts.TLSPort, opts.TLSOnly, tc.addr, tc.tlsPort, tc.tlsOnly)
		}
		if tc.tlsPort != 0 && (opts.TLSConfig == nil || opts.TLSConfig.InsecureSkipVerify != tc.insecure || (opts.TLSConfig.RootCAs != nil) != tc.roots) {
			t.Errorf("%s: TLS config %+v", tc.url, opts.TLSConfig)
		}
	}
}
