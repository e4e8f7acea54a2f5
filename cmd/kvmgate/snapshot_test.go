package main

import (
	"bytes"
	"context"
	"image/png"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kvmgate/framebuffer"
	"kvmgate/internal/testserver"
)

func TestUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "Commands:"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"--help"}, 0, "snapshot"},
		{[]string{"snapshot"}, exitUsage, "--target is required"},
		{[]string{"snapshot", "--target", "vnc://h", "extra"}, exitUsage, "no other arguments"},
		{[]string{"snapshot", "--target", "gopher://127.0.0.1:1"}, exitUsage, "unknown target scheme"},
		{[]string{"snapshot", "--target", "vnc://h:1", "--encodings", "nope"}, exitUsage, "unknown encoding"},
		{[]string{"snapshot", "--no-such-flag"}, exitUsage, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			// flag prints its own parse errors to os.Stderr.
			code := run(context.Background(), tt.args, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if tt.want != "flag provided but not defined" && !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, stderr.String())
			}
		})
	}
}

// listen starts a TCP server that runs serve on each connection.
func listen(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return l.Addr().String()
}

func TestSnapshotErrors(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := l.Addr().String()
	l.Close()
	notRFB := listen(t, func(c net.Conn) { c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")) })
	silent := listen(t, func(c net.Conn) { c.Read(make([]byte, 1)) })
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unreachable", []string{"--target", "vnc://" + refused}, exitUnreachable, "connection refused"},
		{"not RFB", []string{"--target", "vnc://" + notRFB}, exitProtocol, "not an RFB server"},
		{"timeout", []string{"--target", "vnc://" + silent, "--timeout", "300ms"}, exitTimeout, "deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			args := append([]string{"snapshot", "-o", filepath.Join(t.TempDir(), "x.png")}, tt.args...)
			if code := run(context.Background(), args, &stderr); code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.want)
			}
		})
	}
}

func TestSnapshotXvnc(t *testing.T) {
	if testing.Short() {
		t.Skip("real-server test; skipped with -short")
	}
	const password = "pa55w0rd"
	x := testserver.StartXvnc(t, testserver.XvncOptions{Width: 640, Height: 400, Password: password})
	x.Run(t, "xsetroot", "-solid", "#2e8b57")
	dir := t.TempDir()

	t.Run("password from environment", func(t *testing.T) {
		t.Setenv("KVMGATE_PASSWORD", password)
		out := filepath.Join(dir, "env.png")
		var stderr bytes.Buffer
		if code := run(context.Background(), []string{"snapshot", "--target", "vnc://" + x.Addr(), "--encodings", "zrle,raw", "-o", out}, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		img, err := png.Decode(f)
		if err != nil {
			t.Fatal(err)
		}
		b := img.Bounds()
		got, _ := framebuffer.NewCanvas(b.Dx(), b.Dy())
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < b.Dx(); x++ {
				r, g, bl, _ := img.At(x, y).RGBA()
				copy(got.Row(x, y, 1), []byte{byte(r >> 8), byte(g >> 8), byte(bl >> 8), 255})
			}
		}
		want, err := x.Screenshot()
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(want) {
			t.Errorf("snapshot %dx%d differs from the server's %dx%d screen", got.W, got.H, want.W, want.H)
		}
	})

	t.Run("wrong password from file", func(t *testing.T) {
		t.Setenv("KVMGATE_PASSWORD", "")
		pwFile := filepath.Join(dir, "pw")
		os.WriteFile(pwFile, []byte("not-it\n"), 0o600)
		var stderr bytes.Buffer
		code := run(context.Background(), []string{"snapshot", "--target", "vnc://" + x.Addr(), "--password-file", pwFile, "-o", filepath.Join(dir, "no.png")}, &stderr)
		if code != exitAuth {
			t.Errorf("exit %d, want %d: %s", code, exitAuth, stderr.String())
		}
		if !strings.Contains(stderr.String(), "authentication failed") || strings.Contains(stderr.String(), "not-it") {
			t.Errorf("stderr %q: want the failure, never the password", stderr.String())
		}
		if _, err := os.Stat(filepath.Join(dir, "no.png")); err == nil {
			t.Error("a PNG was written after a failed login")
		}
	})
}
