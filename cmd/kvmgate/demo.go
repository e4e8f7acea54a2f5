package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"

	"kvmgate/client"
	"kvmgate/demo"
	"kvmgate/server"
)

func init() {
	register(&command{
		Name:    "demo",
		Summary: "serve a built-in demo console to browsers (no VM needed)",
		Run:     runDemo,
	})
}

const demoUsage = `Usage: kvmgate demo [flags]

Starts a built-in demo console (a small terminal, a clock and an animation)
as an RFB server on loopback, and serves it to browsers with the same
server as "kvmgate serve --target vnc://ADDR", through kvmgate's own RFB
client, so the demo exercises the real path. Open the printed URL. With
--rfb-only it runs just the RFB server and prints its address, for VNC
viewers and tests. With --motion the right half of the screen animates (a
plasma, 30 frames a second): heavy motion for the video transports
(?transport=wsvideo, webrtc, or auto to switch with activity).

Flags:
`

func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), demoUsage)
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:8080", "serve browsers on `ADDR`")
	rfbListen := fs.String("rfb-listen", "127.0.0.1:0", "run the demo's RFB server on `ADDR` (port 0: any free port)")
	rfbOnly := fs.Bool("rfb-only", false, "run only the demo's RFB server and print its vnc:// address")
	width := fs.Int("width", 1024, "screen width in pixels")
	height := fs.Int("height", 768, "screen height in pixels")
	motion := fs.Bool("motion", false, "animate the right half of the screen (heavy motion, for video)")
	verbose := fs.Bool("v", false, "log debug events to standard error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &exitError{Code: exitUsage, Err: errors.New("")}
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return &exitError{Code: exitUsage, Err: fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	addr, console, err := demo.Start(ctx, demo.Options{Width: *width, Height: *height, Listen: *rfbListen, Logger: log, Motion: *motion})
	if err != nil {
		return &exitError{Code: exitUsage, Err: err}
	}
	// Wait for the demo's goroutines however we leave.
	defer func() {
		cancel()
		<-console.Done()
	}()
	target := "vnc://" + addr

	if *rfbOnly {
		fmt.Printf("kvmgate demo: RFB server at %s\n", target)
		<-ctx.Done()
		return nil
	}
	srv, err := server.New(server.Options{Listen: *listen, Target: target, Client: client.FS, Logger: log})
	if err != nil {
		return &exitError{Code: exitUsage, Err: err}
	}
	err = srv.ListenAndServe(ctx, func(url string) {
		fmt.Printf("kvmgate demo: open %s (console at %s)\n", url, target)
	})
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "listen" {
			return &exitError{Code: exitUsage, Err: err}
		}
		return &exitError{Code: exitFailure, Err: err}
	}
	return nil
}
