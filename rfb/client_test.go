package rfb

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// pipeBuf holds bytes a drain goroutine read from a connection.
type pipeBuf struct {
	mu   sync.Mutex
	cond *sync.Cond
	buf  []byte
	err  error
}

func newPipeBuf() *pipeBuf {
	pb := &pipeBuf{}
	pb.cond = sync.NewCond(&pb.mu)
	return pb
}

// drain copies conn into pb until an error.
func drain(conn net.Conn, pb *pipeBuf) {
	b := make([]byte, 4096)
	for {
		n, err := conn.Read(b)
		pb.mu.Lock()
		pb.buf = append(pb.buf, b[:n]...)
		if err != nil {
			pb.err = err
		}
		pb.cond.Broadcast()
		pb.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// take waits for n bytes (exactly n if exact, else 1..n) for up to 5
// seconds; it returns nil on timeout or after the connection closed.
func (pb *pipeBuf) take(n int, exact bool) ([]byte, error) {
	deadline := time.Now().Add(5 * time.Second)
	timer := time.AfterFunc(5*time.Second, func() {
		pb.mu.Lock()
		pb.cond.Broadcast()
		pb.mu.Unlock()
	})
	defer timer.Stop()
	pb.mu.Lock()
	defer pb.mu.Unlock()
	need := n
	if !exact {
		need = 1
	}
	for len(pb.buf) < need {
		if pb.err != nil {
			return nil, pb.err
		}
		if time.Now().After(deadline) {
			return nil, errors.New("timeout")
		}
		pb.cond.Wait()
	}
	n = min(n, len(pb.buf))
	b := append([]byte(nil), pb.buf[:n]...)
	pb.buf = pb.buf[n:]
	return b, nil
}

// fakeServer is the server end of a net.Pipe, driven by a test script. A
// goroutine drains everything the client writes into a buffer, so the
// client never blocks on a write the script does not expect yet.
type fakeServer struct {
	t    testing.TB
	conn net.Conn // for writes; a *tls.Conn after switchTLS
	in   *pipeBuf // what the client sent, at the current layer
}

func newFakeServer(t testing.TB, conn net.Conn) *fakeServer {
	s := &fakeServer{t: t, conn: conn, in: newPipeBuf()}
	go drain(conn, s.in)
	return s
}

// read returns the next n bytes the client sent, or nil after the client
// closed or 5 seconds passed.
func (s *fakeServer) read(n int) []byte {
	b, err := s.in.take(n, true)
	if err != nil {
		s.t.Errorf("fake server: wanted %d bytes from the client: %v", n, err)
	}
	return b
}

func (s *fakeServer) expect(want []byte, what string) bool {
	got := s.read(len(want))
	if !bytes.Equal(got, want) {
		s.t.Errorf("fake server: %s: got % x, want % x", what, got, want)
		return false
	}
	return true
}

func (s *fakeServer) write(parts ...[]byte) {
	for _, p := range parts {
		if _, err := s.conn.Write(p); err != nil {
			s.t.Errorf("fake server: write: %v", err)
			return
		}
	}
}

// msg reads one complete client message and returns its bytes.
func (s *fakeServer) msg() []byte {
	t := s.read(1)
	if t == nil {
		return nil
	}
	var rest []byte
	switch t[0] {
	case msgSetPixelFormat:
		rest = s.read(19)
	case msgSetEncodings:
		h := s.read(3)
		rest = append(h, s.read(4*int(binary.BigEndian.Uint16(h[1:])))...)
	case msgFramebufferUpdateReq:
		rest = s.read(9)
	case msgKeyEvent:
		rest = s.read(7)
	case msgPointerEvent:
		rest = s.read(5)
	case msgClientCutText:
		h := s.read(7)
		n := int32(binary.BigEndian.Uint32(h[3:]))
		if n < 0 {
			n = -n
		}
		rest = append(h, s.read(int(n))...)
	case msgEnableContinuousUpdates:
		rest = s.read(9)
	case msgClientFence:
		h := s.read(8)
		rest = append(h, s.read(int(h[7]))...)
	case msgXVP:
		rest = s.read(3)
	case msgSetDesktopSize:
		h := s.read(7)
		rest = append(h, s.read(16*int(h[5]))...)
	case msgQEMU:
		rest = s.read(11)
	default:
		s.t.Errorf("fake server: unknown client message type %d", t[0])
	}
	return append(t, rest...)
}

// expectMsg reads client messages until one of type typ, skipping update
// requests (unless typ is an update request).
func (s *fakeServer) expectMsg(typ byte) []byte {
	for i := 0; i < 100; i++ {
		m := s.msg()
		if m == nil {
			return nil
		}
		if m[0] == typ {
			return m
		}
		if m[0] != msgFramebufferUpdateReq {
			s.t.Errorf("fake server: wanted message %d, got % x", typ, m)
			return nil
		}
	}
	return nil
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func str32(s string) []byte { return append(u32(uint32(len(s))), s...) }

func serverInitMsg(w, h int, pf PixelFormat, name string) []byte {
	b := append(u16(uint16(w)), u16(uint16(h))...)
	b = append(b, pf.Marshal()...)
	return append(b, str32(name)...)
}

// finishInit plays the server from ClientInit to the client's SetEncodings.
func (s *fakeServer) finishInit(w, h int, name string) {
	s.expect([]byte{1}, "ClientInit shared")
	s.write(serverInitMsg(w, h, NativeFormat, name))
	m := s.expectMsg(msgSetPixelFormat)
	if m != nil && !bytes.Equal(m[4:], NativeFormat.Marshal()) {
		s.t.Errorf("SetPixelFormat % x, want native", m[4:])
	}
	s.expectMsg(msgSetEncodings)
}

// startFake runs script as the server of a pipe and returns the client end.
func startFake(t *testing.T, script func(s *fakeServer)) net.Conn {
	t.Helper()
	cc, sc := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := newFakeServer(t, sc)
		script(s)
	}()
	t.Cleanup(func() {
		cc.Close()
		sc.Close()
		<-done
	})
	return cc
}

func dialFake(t *testing.T, opts Options, script func(s *fakeServer)) (*Client, error) {
	t.Helper()
	conn := startFake(t, script)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return NewClient(ctx, conn, opts)
}

func TestVNCAuthResponse(t *testing.T) {
	// Computed independently with OpenSSL: the key is "password" with each
	// byte bit-reversed (0e86ceceeef64e26), DES-ECB over bytes 00..0f.
	var ch [16]byte
	for i := range ch {
		ch[i] = byte(i)
	}
	got := vncAuthResponse("password", ch)
	want, _ := hex.DecodeString("b866924125c8eebb9debc1db61c538e2")
	if !bytes.Equal(got[:], want) {
		t.Errorf("response %x, want %x", got, want)
	}
	// Only the first 8 bytes of the password count.
	if vncAuthResponse("password-and-more", ch) != got {
		t.Error("password not truncated to 8 bytes")
	}
}

func TestHandshakeVersions(t *testing.T) {
	tests := []struct {
		banner, reply, version string
	}{
		{"RFB 003.003\n", "RFB 003.003\n", "3.3"},
		{"RFB 003.005\n", "RFB 003.003\n", "3.3"},
		{"RFB 003.006\n", "RFB 003.003\n", "3.3"},
		{"RFB 003.007\n", "RFB 003.007\n", "3.7"},
		{"RFB 003.008\n", "RFB 003.008\n", "3.8"},
		{"RFB 003.889\n", "RFB 003.008\n", "3.8"}, // Apple
		{"RFB 004.000\n", "RFB 003.008\n", "3.8"}, // Intel AMT
		{"RFB 004.001\n", "RFB 003.008\n", "3.8"}, // RealVNC
		{"RFB 005.000\n", "RFB 003.008\n", "3.8"}, // RealVNC
	}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(tt.banner), func(t *testing.T) {
			c, err := dialFake(t, NewOptions(), func(s *fakeServer) {
				s.write([]byte(tt.banner))
				if !s.expect([]byte(tt.reply), "version") {
					return
				}
				switch tt.version {
				case "3.3":
					s.write(u32(secNone))
				case "3.7":
					s.write([]byte{1, secNone})
					s.expect([]byte{secNone}, "security type")
				case "3.8":
					s.write([]byte{2, 99, secNone})
					s.expect([]byte{secNone}, "security type")
					s.write(u32(0))
				}
				s.finishInit(320, 200, "desk")
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Version() != tt.version {
				t.Errorf("version %s, want %s", c.Version(), tt.version)
			}
			if w, h := c.Size(); w != 320 || h != 200 || c.Name() != "desk" {
				t.Errorf("got %dx%d %q", w, h, c.Name())
			}
		})
	}
}

func TestHandshakeVNCAuth(t *testing.T) {
	var ch [16]byte
	copy(ch[:], "0123456789abcdef")
	want := vncAuthResponse("secret", ch)
	for _, version := range []string{"3.3", "3.7", "3.8"} {
		t.Run(version, func(t *testing.T) {
			c, err := dialFake(t, Options{Password: "secret", QualityLevel: -1, CompressLevel: -1}, func(s *fakeServer) {
				s.write([]byte("RFB 003.00" + version[2:] + "\n"))
				s.read(12)
				if version == "3.3" {
					s.write(u32(secVNCAuth))
				} else {
					s.write([]byte{1, secVNCAuth})
					s.expect([]byte{secVNCAuth}, "security type")
				}
				s.write(ch[:])
				if !s.expect(want[:], "VNC auth response") {
					return
				}
				s.write(u32(0))
				s.finishInit(64, 48, "vm")
			})
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		})
	}
}

func TestHandshakeFailures(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		script func(s *fakeServer)
		check  func(t *testing.T, err error)
	}{{
		name: "3.8 refused with reason",
		script: func(s *fakeServer) {
			s.write([]byte("RFB 003.008\n"))
			s.read(12)
			s.write([]byte{0}, str32("Too many security failures"))
		},
		check: wantRefused("Too many security failures"),
	}, {
		name: "3.3 connection failed with reason",
		script: func(s *fakeServer) {
			s.write([]byte("RFB 003.003\n"))
			s.read(12)
			s.write(u32(0), str32("No more connections allowed, sorry"))
		},
		check: wantRefused("No more connections allowed, sorry"),
	}, {
		name: "3.8 wrong password reason verbatim",
		opts: Options{Password: "wrong"},
		script: func(s *fakeServer) {
			s.write([]byte("RFB 003.008\n"))
			s.read(12)
			s.write([]byte{1, secVNCAuth})
			s.read(1)
			s.write(make([]byte, 16))
			s.read(16)
			s.write(u32(1), str32("Authentication failed: bad password, échec"))
		},
		check: wantAuth("Authentication failed: bad password, échec"),
	}, {
		name: "3.7 wrong password without reason",
		opts: Options{Password: "wrong"},
		script: func(s *fakeServer) {
			s.write([]byte("RFB 003.007\n"))
			s.read(12)
			s.write([]byte{1, secVNCAuth})
			s.read(1)
			s.write(make([]byte, 16))
			s.read(16)
			s.write(u32(1))
		},
		check: wantAuth(""),
	}, {
		name: "password needed but missing",
		script: func(s *fakeServer) {
			s.write([]byte("RFB 003.008\n"))
			s.read(12)
			s.write([]byte{1, secVNCAuth})
		},
		check: func(t *testing.T, err error) {
			var ae *AuthError
			if !errors.As(err, &ae) || !strings.Contains(err.Error(), "password") {
				t.Errorf("error %v, want AuthError about a missing password", err)
			}
		},
	}, {
		name: "not RFB",
		script: func(s *fakeServer) {
			s.write([]byte("SSH-2.0-Open"))
		},
		check: wantProtocol("not an RFB server"),
	}, {
		name: "version too old",
		script: func(s *fakeServer) {
			s.write([]byte("RFB 003.002\n"))
		},
		check: wantProtocol("unsupported server version"),
	}, {
		name: "unsupported security types only",
		script: func(s *fakeServer) {
			s.write([]byte("RFB 003.008\n"))
			s.read(12)
			s.write([]byte{2, 30, 5})
		},
		check: wantProtocol("no supported security type"),
	}, {
		name: "huge framebuffer",
		script: func(s *fakeServer) {
			s.write([]byte("RFB 003.008\n"))
			s.read(12)
			s.write([]byte{1, secNone})
			s.read(1)
			s.write(u32(0))
			s.read(1)
			s.write(serverInitMsg(65535, 65535, NativeFormat, "x"))
		},
		check: wantProtocol("out of range"),
	}, {
		name: "huge name",
		script: func(s *fakeServer) {
			s.write([]byte("RFB 003.008\n"))
			s.read(12)
			s.write([]byte{1, secNone})
			s.read(1)
			s.write(u32(0))
			s.read(1)
			b := serverInitMsg(640, 480, NativeFormat, "")
			binary.BigEndian.PutUint32(b[20:], 0xffffffff)
			s.write(b)
		},
		check: wantProtocol("desktop name"),
	}, {
		name: "size over configured maximum",
		opts: Options{MaxWidth: 1024, MaxHeight: 768},
		script: func(s *fakeServer) {
			s.write([]byte("RFB 003.008\n"))
			s.read(12)
			s.write([]byte{1, secNone})
			s.read(1)
			s.write(u32(0))
			s.read(1)
			s.write(serverInitMsg(1280, 1024, NativeFormat, "x"))
		},
		check: wantProtocol("configured maximum"),
	}, {
		name: "VeNCrypt anonymous TLS only",
		opts: Options{Password: "pw"},
		script: func(s *fakeServer) {
			s.write([]byte("RFB 003.008\n"))
			s.read(12)
			s.write([]byte{1, secVeNCrypt})
			s.read(1)
			s.write([]byte{0, 2})
			s.read(2)
			s.write([]byte{0, 2}, u32(vencryptTLSNone), u32(vencryptTLSVnc))
		},
		check: wantProtocol("anonymous Diffie-Hellman"),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := dialFake(t, tt.opts, tt.script)
			if err == nil {
				c.Close()
				t.Fatal("handshake succeeded")
			}
			tt.check(t, err)
		})
	}
}

func wantRefused(reason string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		var re *RefusedError
		if !errors.As(err, &re) || re.Reason != reason {
			t.Errorf("error %v, want RefusedError with reason %q", err, reason)
		}
		if !strings.Contains(err.Error(), reason) {
			t.Errorf("message %q lacks the reason", err)
		}
	}
}

func wantAuth(reason string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		var ae *AuthError
		if !errors.As(err, &ae) || ae.Reason != reason {
			t.Errorf("error %v, want AuthError with reason %q", err, reason)
			return
		}
		if reason != "" && !strings.Contains(err.Error(), reason) {
			t.Errorf("message %q lacks the reason", err)
		}
		if reason == "" && !strings.Contains(err.Error(), "wrong password") {
			t.Errorf("message %q does not say what went wrong", err)
		}
	}
}

func wantProtocol(substr string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		var pe *ProtocolError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), substr) {
			t.Errorf("error %v, want ProtocolError containing %q", err, substr)
		}
	}
}

func TestHandshakeContextDeadline(t *testing.T) {
	conn := startFake(t, func(s *fakeServer) {
		s.write([]byte("RFB 003.008\n"))
		// ...and then nothing.
		s.read(12)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := NewClient(ctx, conn, NewOptions())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want one wrapping context.DeadlineExceeded", err)
	}
}

// testCert makes a self-signed certificate for "kvmgate-test".
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "kvmgate-test"},
		DNSNames:     []string{"kvmgate-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// vencryptServer plays a VeNCrypt server offering subtypes, expecting the
// client to choose want, then (for X509 subtypes) switching to TLS. A nil
// after means the TLS handshake is expected to fail.
func vencryptServer(t *testing.T, cert tls.Certificate, subtypes []uint32, want uint32, after func(s *fakeServer)) func(s *fakeServer) {
	return func(s *fakeServer) {
		s.write([]byte("RFB 003.008\n"))
		s.read(12)
		s.write([]byte{2, secVNCAuth, secVeNCrypt})
		if !s.expect([]byte{secVeNCrypt}, "security type") {
			return
		}
		s.write([]byte{0, 2})
		s.expect([]byte{0, 2}, "VeNCrypt version")
		s.write([]byte{0, byte(len(subtypes))})
		for _, st := range subtypes {
			s.write(u32(st))
		}
		if !s.expect(u32(want), "VeNCrypt subtype") {
			return
		}
		if want >= vencryptX509None {
			s.write([]byte{1})
			if err := s.switchTLS(cert); err != nil {
				if after != nil {
					s.t.Errorf("fake server: TLS handshake: %v", err)
				}
				return
			}
		}
		after(s)
	}
}

// switchTLS makes the rest of the conversation run over TLS: a TLS server
// reads the raw bytes the drain collected, and a second drain collects the
// plaintext.
func (s *fakeServer) switchTLS(cert tls.Certificate) error {
	tc := tls.Server(&bufConn{Conn: s.conn, pb: s.in}, &tls.Config{Certificates: []tls.Certificate{cert}})
	if err := tc.Handshake(); err != nil {
		return err
	}
	plain := newPipeBuf()
	go drain(tc, plain)
	s.conn, s.in = tc, plain
	return nil
}

// bufConn reads from a drained buffer and writes to the pipe, so a TLS
// server can run on top of the drain.
type bufConn struct {
	net.Conn
	pb *pipeBuf
}

func (c *bufConn) Read(p []byte) (int, error) {
	b, err := c.pb.take(len(p), false)
	if err != nil {
		return 0, err
	}
	return copy(p, b), nil
}

func TestVeNCryptX509Plain(t *testing.T) {
	cert, pool := testCert(t)
	opts := Options{Username: "alice", Password: "s3cret", TLSConfig: &tls.Config{RootCAs: pool, ServerName: "kvmgate-test"}, QualityLevel: -1, CompressLevel: -1}
	c, err := dialFake(t, opts, vencryptServer(t, cert,
		[]uint32{vencryptTLSPlain, vencryptX509Vnc, vencryptX509Plain}, vencryptX509Plain,
		func(s *fakeServer) {
			want := append(append(u32(5), u32(6)...), "alices3cret"...)
			if !s.expect(want, "Plain credentials") {
				return
			}
			s.write(u32(0))
			s.finishInit(800, 600, "tls desk")
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Security() != "VeNCrypt X509Plain" || c.Name() != "tls desk" {
		t.Errorf("security %q name %q", c.Security(), c.Name())
	}
}

func TestVeNCryptX509VncUntrusted(t *testing.T) {
	cert, _ := testCert(t)
	opts := Options{Password: "pw", TLSConfig: &tls.Config{ServerName: "kvmgate-test"}}
	_, err := dialFake(t, opts, vencryptServer(t, cert, []uint32{vencryptX509Vnc}, vencryptX509Vnc, nil))
	var ue x509.UnknownAuthorityError
	if !errors.As(err, &ue) {
		t.Errorf("error %v, want an unknown-authority certificate error", err)
	}
}

func TestVeNCryptX509VncInsecure(t *testing.T) {
	cert, _ := testCert(t)
	var ch [16]byte
	copy(ch[:], "challenge-bytes!")
	want := vncAuthResponse("pw", ch)
	c, err := dialFake(t, Options{Password: "pw", TLSInsecure: true}, vencryptServer(t, cert,
		[]uint32{vencryptX509Vnc}, vencryptX509Vnc, func(s *fakeServer) {
			s.write(ch[:])
			if !s.expect(want[:], "VNC auth response over TLS") {
				return
			}
			s.write(u32(0))
			s.finishInit(100, 100, "x")
		}))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestVeNCryptFallbackToVncAuth(t *testing.T) {
	// Only anonymous TLS plus plain VncAuth inside VeNCrypt: the client
	// must take VncAuth rather than fail.
	var ch [16]byte
	want := vncAuthResponse("pw", ch)
	conn := startFake(t, func(s *fakeServer) {
		s.write([]byte("RFB 003.008\n"))
		s.read(12)
		s.write([]byte{1, secVeNCrypt})
		s.read(1)
		s.write([]byte{0, 2})
		s.read(2)
		s.write([]byte{0, 2}, u32(vencryptTLSVnc), u32(secVNCAuth))
		if !s.expect(u32(secVNCAuth), "subtype") {
			return
		}
		s.write(ch[:])
		s.expect(want[:], "response")
		s.write(u32(0))
		s.finishInit(10, 10, "")
	})
	c, err := NewClient(context.Background(), conn, Options{Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
