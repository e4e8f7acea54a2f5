package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"kvmgate/backend"
	"kvmgate/framebuffer"
	"kvmgate/rfb"
)

func init() {
	register(&command{
		Name:    "snapshot",
		Summary: "connect to a console (VNC, SPICE, BMC), save one complete screen as PNG and exit",
		Run:     runSnapshot,
	})
}

const snapshotUsage = `Usage: kvmgate snapshot --target URL [flags]

URL is vnc://HOST[:PORT], spice://HOST[:PORT] or
ipmi://USER@BMC?vendor=supermicro (see docs/bmc.md).

Connects, receives one complete framebuffer (the whole answer to the first
full update request) and writes it as a PNG. The password comes from
--password-file or the KVMGATE_PASSWORD environment variable; it is never
printed or logged.

VNC target query parameters: encodings=zrle,hextile  shared=0  quality=0-9
compress=0-9  tls=verify|insecure (prefer VeNCrypt X509). SPICE:
compression=off|auto_lz|lz|lz4|quic  tls-port=N  ca-file=F  insecure=1.

Flags:
`

func runSnapshot(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("snapshot", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), snapshotUsage)
		fs.PrintDefaults()
	}
	target := fs.String("target", "", "console to connect to: `URL` vnc://HOST:PORT (port defaults to 5900), spice://HOST:PORT or ipmi://USER@BMC?vendor=supermicro")
	passwordFile := fs.String("password-file", "", "read the password from `FILE` (first line)")
	username := fs.String("username", "", "user name for VeNCrypt Plain authentication")
	encodings := fs.String("encodings", "", "comma-separated encodings in preference order, e.g. `zrle,hextile,raw`")
	timeout := fs.Duration("timeout", 20*time.Second, "give up after this long")
	out := fs.String("o", "snapshot.png", "write the PNG to `FILE` (- for standard output)")
	verbose := fs.Bool("v", false, "log protocol events to standard error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &exitError{Code: exitUsage, Err: errors.New("")}
	}
	if *target == "" || fs.NArg() > 0 {
		fs.Usage()
		return &exitError{Code: exitUsage, Err: errors.New("--target is required and no other arguments are allowed")}
	}

	secrets := backend.Secrets{Username: *username, Password: os.Getenv("KVMGATE_PASSWORD")}
	if *passwordFile != "" {
		b, err := os.ReadFile(*passwordFile)
		if err != nil {
			return &exitError{Code: exitUsage, Err: fmt.Errorf("reading password file: %w", err)}
		}
		secrets.Password = strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r")
	}
	u, err := backend.ParseTarget(*target)
	if err != nil {
		return &exitError{Code: exitUsage, Err: err}
	}
	if !slices.Contains(backend.Schemes(), u.Scheme) {
		return &exitError{Code: exitUsage, Err: fmt.Errorf("unknown target scheme %q (known: %s)", u.Scheme, strings.Join(backend.Schemes(), ", "))}
	}
	if u.Scheme != "vnc" {
		// Other protocols (ipmi://, ...) open through their registered
		// backend and take their options from the target URL.
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		canvas, err := snapshotTarget(ctx, *target, secrets)
		if err != nil {
			return classify(err, u.Redacted(), *timeout)
		}
		if err := writePNG(*out, canvas); err != nil {
			return &exitError{Code: exitFailure, Err: err}
		}
		return nil
	}
	addr, opts, err := rfb.OptionsFromURL(u, secrets)
	if err != nil {
		return &exitError{Code: exitUsage, Err: err}
	}
	if *encodings != "" {
		if opts.Encodings, err = rfb.ParseEncodings(*encodings); err != nil {
			return &exitError{Code: exitUsage, Err: err}
		}
	}
	if *verbose {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	canvas, err := snapshot(ctx, addr, opts)
	if err != nil {
		return classify(err, addr, *timeout)
	}
	if err := writePNG(*out, canvas); err != nil {
		return &exitError{Code: exitFailure, Err: err}
	}
	if *out != "-" {
		fmt.Fprintf(os.Stderr, "kvmgate snapshot: wrote %dx%d screen of %s to %s\n", canvas.W, canvas.H, addr, *out)
	}
	return nil
}

// snapshot connects to addr and returns the first complete framebuffer.
func snapshot(ctx context.Context, addr string, opts rfb.Options) (*framebuffer.Canvas, error) {
	c, err := rfb.Dial(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	return capture(ctx, c, c.FullFrame())
}

// snapshotTarget opens any registered target with backend.Open and returns
// the first frame it publishes (the whole screen for the backends that
// signal one with FirstFrame).
func snapshotTarget(ctx context.Context, target string, secrets backend.Secrets) (*framebuffer.Canvas, error) {
	c, err := backend.Open(ctx, target, secrets)
	if err != nil {
		return nil, err
	}
	var ready <-chan struct{}
	if ff, ok := c.(interface{ FirstFrame() <-chan struct{} }); ok {
		ready = ff.FirstFrame()
	}
	return capture(ctx, c, ready)
}

// capture runs c until ready is closed (or, with a nil ready, until the
// first picture is published), returns a copy of the screen and closes c.
func capture(ctx context.Context, c backend.Console, ready <-chan struct{}) (*framebuffer.Canvas, error) {
	defer c.Close()
	fb := framebuffer.New()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- c.Run(runCtx, fb) }()
	var tick <-chan time.Time
	if ready == nil {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			if w, _ := fb.Size(); w == 0 {
				continue
			}
		case <-ready:
		case err := <-errc:
			if err == nil {
				err = ctx.Err()
			}
			if err == nil {
				err = errors.New("connection ended before a complete screen arrived")
			}
			return nil, err
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the screen: %w", ctx.Err())
		}
		snap := fb.Snapshot()
		stop()
		<-errc
		return snap, nil
	}
}

// classify turns an error into a clear message and an exit status.
func classify(err error, addr string, timeout time.Duration) error {
	var (
		ae *rfb.AuthError
		re *rfb.RefusedError
		pe *rfb.ProtocolError
		oe *net.OpError
	)
	switch {
	case errors.As(err, &ae):
		return &exitError{Code: exitAuth, Err: err}
	case errors.As(err, &re):
		return &exitError{Code: exitAuth, Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &exitError{Code: exitTimeout, Err: fmt.Errorf("%s: no complete screen within %v: %w", addr, timeout, err)}
	case errors.As(err, &pe):
		return &exitError{Code: exitProtocol, Err: err}
	case errors.As(err, &oe) && oe.Op == "dial":
		return &exitError{Code: exitUnreachable, Err: err}
	}
	return &exitError{Code: exitFailure, Err: err}
}

// writePNG writes c as a PNG file (atomically: a temporary file renamed).
func writePNG(path string, c *framebuffer.Canvas) error {
	img := &image.RGBA{Pix: c.Pix, Stride: c.Stride, Rect: image.Rect(0, 0, c.W, c.H)}
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if path == "-" {
		return enc.Encode(os.Stdout, img)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".snapshot-*.png")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := enc.Encode(f, img); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
