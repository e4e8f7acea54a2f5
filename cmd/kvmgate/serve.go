package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"kvmgate/backend"
	"kvmgate/client"
	"kvmgate/server"
	"kvmgate/server/websockify"
	"kvmgate/session"
)

func init() {
	register(&command{
		Name:    "serve",
		Summary: "serve consoles (VNC targets) to browsers",
		Run:     runServe,
	})
}

const serveUsage = `Usage: kvmgate serve [flags] --target vnc://HOST:PORT | --token-file F | --token-dir D

Connects to consoles on demand and serves them to browsers: the console page
at /, the WebSocket at /ws, a JSON API at /api/sessions (with an API key),
/healthz and /metrics. See docs/api.md.

noVNC connects as it would to websockify, at /websockify?token=NAME (or
/websockify for --target): VNC targets are relayed byte for byte unless
--novnc-mode=reencode, when kvmgate speaks RFB to noVNC from its own shared
framebuffer. --rfb-listen serves --target to native VNC viewers.

Passwords come from --password-dir (a file per target named HOST_PORT),
then --password-file, then the KVMGATE_PASSWORD environment variable; the
username (where the protocol wants one) from KVMGATE_USERNAME. They are read
for every connection, never logged and never sent to a browser. The API key
comes from --api-key-file or KVMGATE_API_KEY; without one the API is off.

Flags:
`

func runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), serveUsage)
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:8080", "serve browsers on `ADDR`")
	target := fs.String("target", "", "the console served at / (`URL`, e.g. vnc://10.0.0.5:5901 or HOST:PORT)")
	passwordFile := fs.String("password-file", "", "read the console password from `FILE`")
	passwordDir := fs.String("password-dir", "", "read each target's password from `DIR`/HOST_PORT")
	tokenFile := fs.String("token-file", "", "websockify-style token `FILE` (token: host:port per line), re-read on change")
	tokenDir := fs.String("token-dir", "", "`DIR` of websockify-style token files, re-read on change")
	origins := fs.String("allow-origin", "", "comma-separated browser `ORIGINS` allowed to connect (default: same host; * for any)")
	idle := fs.Duration("idle-timeout", session.DefaultIdleTimeout, "keep a console connected this long after its last viewer left")
	apiKeyFile := fs.String("api-key-file", "", "enable the JSON API with the key in `FILE` (or set KVMGATE_API_KEY)")
	ticketKeyFile := fs.String("ticket-key-file", "", "sign tickets with the key in `FILE` (default: random per process)")
	ticketTTL := fs.Duration("ticket-ttl", server.DefaultTicketTTL, "lifetime of signed tickets")
	verbose := fs.Bool("v", false, "log debug events to standard error")
	wsPath := fs.String("websockify-path", websockify.DefaultPath, "serve noVNC's websockify endpoint at `PATH` (empty: off)")
	novncMode := fs.String("novnc-mode", "auto", "how VNC targets reach noVNC: `passthrough` (bytes relayed as websockify does) or reencode (RFB from kvmgate's shared framebuffer); auto passes VNC targets through, other targets are always re-encoded")
	web := fs.String("web", "", "serve a noVNC copy from `DIR` at /novnc/ (websockify's --web)")
	heartbeat := fs.Duration("heartbeat", 0, "ping noVNC connections this often (websockify's --heartbeat)")
	wsIdle := fs.Duration("websockify-idle-timeout", 0, "close a noVNC connection that carried nothing for this long (0: never)")
	record := fs.String("record", "", "record every noVNC connection into `DIR`, in websockify's --record format")
	rfbListen := fs.String("rfb-listen", "", "serve the --target console, re-encoded, to native VNC viewers on `ADDR`")
	novncPassword := fs.String("novnc-password-file", "", "require the VNC password in `FILE` from re-encoded noVNC and native viewers")
	noWebRTC := fs.Bool("no-webrtc", false, "refuse the WebRTC transport (viewers asking for it get WebSocket video)")
	rtcIPs := fs.String("webrtc-public-ip", "", "comma-separated public `IPS` announced as WebRTC host candidates (1:1 NAT)")
	rtcPorts := fs.String("webrtc-ports", "", "UDP port range `MIN-MAX` for WebRTC (default: any)")
	rtcIfaces := fs.String("webrtc-interfaces", "", "comma-separated network `INTERFACES` WebRTC may use (default: all)")
	iceURLs := fs.String("ice-server", "", "comma-separated STUN/TURN `URLS` for WebRTC, e.g. turn:turn.example.com:3478")
	turnUser := fs.String("turn-user", "", "TURN `USERNAME` for --ice-server")
	turnCredFile := fs.String("turn-credential-file", "", "read the TURN credential from `FILE`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &exitError{Code: exitUsage, Err: errors.New("")}
	}
	usageErr := func(format string, a ...any) error {
		return &exitError{Code: exitUsage, Err: fmt.Errorf(format, a...)}
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected arguments %q", fs.Args())
	}
	if *tokenFile != "" && *tokenDir != "" {
		return usageErr("give --token-file or --token-dir, not both")
	}
	tokenPath := *tokenFile + *tokenDir
	if *target == "" && tokenPath == "" && os.Getenv("KVMGATE_API_KEY") == "" && *apiKeyFile == "" {
		fs.Usage()
		return usageErr("nothing to serve: give --target, --token-file, --token-dir or an API key")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	opts := server.Options{
		Listen:      *listen,
		Target:      *target,
		TokenPath:   tokenPath,
		IdleTimeout: *idle,
		TicketTTL:   *ticketTTL,
		Client:      client.FS,
		Logger:      log,
		Secrets:     secretsFrom(*passwordDir, *passwordFile),
	}
	opts.WebRTC.Disabled = *noWebRTC
	for _, ip := range strings.Split(*rtcIPs, ",") {
		if ip = strings.TrimSpace(ip); ip != "" {
			opts.WebRTC.PublicIPs = append(opts.WebRTC.PublicIPs, ip)
		}
	}
	if *rtcIfaces != "" {
		opts.WebRTC.Interfaces = strings.Split(*rtcIfaces, ",")
	}
	if *rtcPorts != "" {
		lo, hi, ok := strings.Cut(*rtcPorts, "-")
		pmin, err1 := strconv.ParseUint(lo, 10, 16)
		pmax, err2 := strconv.ParseUint(hi, 10, 16)
		if !ok || err1 != nil || err2 != nil || pmin == 0 || pmin > pmax {
			return usageErr("--webrtc-ports: want MIN-MAX, got %q", *rtcPorts)
		}
		opts.WebRTC.PortMin, opts.WebRTC.PortMax = uint16(pmin), uint16(pmax)
	}
	if *iceURLs != "" {
		ice := server.ICEServer{Username: *turnUser}
		for _, u := range strings.Split(*iceURLs, ",") {
			if u = strings.TrimSpace(u); u != "" {
				ice.URLs = append(ice.URLs, u)
			}
		}
		if *turnCredFile != "" {
			cred, err := readSecretFile(*turnCredFile)
			if err != nil {
				return usageErr("--turn-credential-file: %v", err)
			}
			ice.Credential = cred
		}
		opts.WebRTC.ICEServers = []server.ICEServer{ice}
	}
	for _, o := range strings.Split(*origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			opts.AllowedOrigins = append(opts.AllowedOrigins, o)
		}
	}
	if *apiKeyFile != "" {
		key, err := readSecretFile(*apiKeyFile)
		if err != nil {
			return usageErr("--api-key-file: %v", err)
		}
		opts.APIKey = key
	} else {
		opts.APIKey = os.Getenv("KVMGATE_API_KEY")
	}
	if *ticketKeyFile != "" {
		key, err := readSecretFile(*ticketKeyFile)
		if err != nil {
			return usageErr("--ticket-key-file: %v", err)
		}
		if len(key) < 16 {
			return usageErr("--ticket-key-file: key shorter than 16 bytes")
		}
		opts.TicketKey = []byte(key)
	}
	if *passwordFile != "" {
		if _, err := readSecretFile(*passwordFile); err != nil {
			return usageErr("--password-file: %v", err)
		}
	}
	if *wsPath != "" || *rfbListen != "" {
		mode, err := websockify.ParseMode(*novncMode)
		if err != nil {
			return usageErr("--novnc-mode: %v", err)
		}
		if *rfbListen != "" && *target == "" {
			return usageErr("--rfb-listen needs --target")
		}
		nv := &server.NoVNCOptions{
			Path: *wsPath, Mode: mode, Web: *web, Heartbeat: *heartbeat,
			IdleTimeout: *wsIdle, RecordDir: *record, RFBListen: *rfbListen,
		}
		if *novncPassword != "" {
			if _, err := readSecretFile(*novncPassword); err != nil {
				return usageErr("--novnc-password-file: %v", err)
			}
			file := *novncPassword
			// While the file is unreadable viewers are refused: they are
			// asked for a random password nobody knows.
			var deny [16]byte
			_, _ = rand.Read(deny[:])
			nv.Password = func(string) string {
				pw, err := readSecretFile(file)
				if err != nil || pw == "" {
					log.Warn("novnc password file unreadable or empty; refusing viewers", "err", err)
					return string(deny[:])
				}
				return pw
			}
		}
		opts.NoVNC = nv
	}
	srv, err := server.New(opts)
	if err != nil {
		return usageErr("%v", err)
	}
	err = srv.ListenAndServe(ctx, func(u string) {
		switch {
		case *target != "":
			fmt.Printf("kvmgate serve: open %s (console at %s)\n", u, *target)
		case tokenPath != "":
			fmt.Printf("kvmgate serve: open %s?token=NAME (tokens from %s)\n", u, tokenPath)
		default:
			fmt.Printf("kvmgate serve: API at %sapi/sessions\n", u)
		}
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

// readSecretFile reads a one-line secret, without its trailing newline.
func readSecretFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// secretsFrom returns the credential lookup of the serve command: a file
// per target in dir, else the password file, else $KVMGATE_PASSWORD.
// Files are read at every connection so that rotated passwords apply.
func secretsFrom(dir, file string) func(target string) (backend.Secrets, error) {
	return func(target string) (backend.Secrets, error) {
		s := backend.Secrets{Username: os.Getenv("KVMGATE_USERNAME")}
		if dir != "" {
			if u, err := url.Parse(target); err == nil && u.Host != "" {
				name := filepath.Join(dir, strings.NewReplacer(":", "_", "/", "_", "[", "", "]", "").Replace(u.Host))
				if pw, err := readSecretFile(name); err == nil {
					s.Password = pw
					return s, nil
				} else if !errors.Is(err, os.ErrNotExist) {
					return s, fmt.Errorf("password for %s: %w", u.Host, err)
				}
			}
		}
		if file != "" {
			pw, err := readSecretFile(file)
			if err != nil {
				return s, fmt.Errorf("password file: %w", err)
			}
			s.Password = pw
			return s, nil
		}
		s.Password = os.Getenv("KVMGATE_PASSWORD")
		return s, nil
	}
}
