// Command record records a live RFB session to an FBS file: kvmgate's rfb
// client connects to the target through a recording relay for a number of
// seconds, and the server's bytes go to the file with their arrival times.
// Metadata (what the client asked for) goes next to it as name.json.
//
//	go run ./bench/cmd/record --target vnc://127.0.0.1:5900 --seconds 20 -o screen.fbs.gz [--novnc] [--name NAME]
//
// The target takes the query parameters of kvmgate's vnc:// targets
// (encodings=, quality=, compress=). --novnc asks what noVNC asks by
// default instead. The password, if the server wants one, is read from the
// KVMGATE_VNC_PASSWORD environment variable.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"kvmgate/backend"
	"kvmgate/bench/fbs"
	"kvmgate/rfb"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "record:", err)
		os.Exit(1)
	}
}

func run() error {
	target := flag.String("target", "", "vnc://host:port[?encodings=...&quality=N&compress=N]")
	seconds := flag.Float64("seconds", 10, "how long to record")
	out := flag.String("o", "", "output file (name.fbs or name.fbs.gz)")
	name := flag.String("name", "", "workload name for the metadata (default: the file's name)")
	desc := flag.String("description", "", "what the screen shows, for the metadata")
	novnc := flag.Bool("novnc", false, "ask what noVNC asks by default (tight first, quality 6, compress 2)")
	flag.Parse()
	if *target == "" || *out == "" {
		flag.Usage()
		return fmt.Errorf("--target and -o are required")
	}
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "vnc" {
		return fmt.Errorf("bad target %q: want vnc://host:port", *target)
	}
	addr, opts, err := rfb.OptionsFromURL(u, backend.Secrets{Password: os.Getenv("KVMGATE_VNC_PASSWORD")})
	if err != nil {
		return err
	}
	if *name == "" {
		*name = strings.TrimSuffix(strings.TrimSuffix(filepath.Base(*out), ".gz"), ".fbs")
	}
	m := fbs.Meta{
		Name: *name, Description: *desc, Client: fbs.ClientKvmgate,
		Quality: opts.QualityLevel, Compress: opts.CompressLevel,
		Command: "go run ./bench/cmd/record " + strings.Join(os.Args[1:], " "),
	}
	for _, e := range opts.Encodings {
		m.Encodings = append(m.Encodings, e.String())
	}
	if *novnc {
		m = m.NoVNC()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	s, err := fbs.StartSession(ctx, addr, m, *out, time.Now())
	if err != nil {
		return err
	}
	select {
	case <-time.After(time.Duration(*seconds * float64(time.Second))):
	case <-ctx.Done():
	}
	m, err = s.Stop()
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d bytes over %.1f s from %s (%dx%d); metadata in %s\n",
		*out, m.Bytes, float64(m.DurationMs)/1000, m.Server, m.Width, m.Height, fbs.MetaPath(*out))
	return nil
}
