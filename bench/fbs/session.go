package fbs

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/rfb"
)

// Recording clients named in Meta.Client.
const (
	ClientKvmgate = "kvmgate"
	ClientNoVNC   = "novnc-defaults"
)

// NoVNCEncodings is the pixel encoding order noVNC (1.x) asks for by
// default, restricted to the encodings kvmgate's client decodes (noVNC also
// lists TightPNG and JPEG after Tight; servers that speak Tight pick Tight
// first, so the server's bytes are the same).
var NoVNCEncodings = []string{"copyrect", "tight", "zrle", "hextile", "rre", "zlib", "raw"}

// NoVNC turns m into what noVNC asks a server for with its default
// settings: NoVNCEncodings, quality 6, compression 2.
func (m Meta) NoVNC() Meta {
	m.Client = ClientNoVNC
	m.Encodings = NoVNCEncodings
	m.Quality, m.Compress = 6, 2
	return m
}

// Session is a live recording: kvmgate's rfb.Client connected to a server
// through a Relay that writes the server's bytes to a file.
type Session struct {
	path   string
	meta   Meta
	f      *os.File
	bw     *bufio.Writer
	zw     *gzip.Writer
	w      *Writer
	relay  *Relay
	client *rfb.Client
	fb     *framebuffer.Framebuffer
	cancel context.CancelFunc
	done   chan error
}

// StartSession connects kvmgate's rfb client, configured by m, to the RFB
// server at addr through a recording relay, and records into path (gzipped
// when path ends in ".gz"). Timestamps count from start, so sessions
// started together share one clock. It returns once the handshake is done
// and the client is running.
func StartSession(ctx context.Context, addr string, m Meta, path string, start time.Time) (*Session, error) {
	return StartThrottledSession(ctx, addr, m, path, start, nil)
}

// StartThrottledSession is StartSession over a path shaped by th (see
// Throttle); m.Link should name the path.
func StartThrottledSession(ctx context.Context, addr string, m Meta, path string, start time.Time, th *Throttle) (*Session, error) {
	opts, err := m.Options()
	if err != nil {
		return nil, err
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("fbs: %w", err)
	}
	s := &Session{path: path, meta: m, f: f, fb: framebuffer.New(), done: make(chan error, 1)}
	s.bw = bufio.NewWriterSize(f, 256<<10)
	out := interface{ Write([]byte) (int, error) }(s.bw)
	if strings.HasSuffix(path, ".gz") {
		s.zw, _ = gzip.NewWriterLevel(s.bw, gzip.BestCompression)
		out = s.zw
	}
	if s.w, err = NewWriter(out); err != nil {
		f.Close()
		return nil, err
	}
	if s.relay, err = StartRelay(addr, s.w, start, th); err != nil {
		f.Close()
		return nil, err
	}
	hctx, hcancel := context.WithTimeout(ctx, 30*time.Second)
	s.client, err = rfb.Dial(hctx, s.relay.Addr(), opts)
	hcancel()
	if err != nil {
		s.relay.Close()
		f.Close()
		return nil, fmt.Errorf("fbs: recording %s: %w", addr, err)
	}
	var rctx context.Context
	rctx, s.cancel = context.WithCancel(context.Background())
	go func() { s.done <- s.client.Run(rctx, s.fb) }()
	return s, nil
}

// Framebuffer returns the picture the recording client decoded.
func (s *Session) Framebuffer() *framebuffer.Framebuffer { return s.fb }

// Client returns the recording client.
func (s *Session) Client() *rfb.Client { return s.client }

// Stop ends the connection, finishes the file, writes its metadata (m with
// server, size, duration and byte count filled in) and returns it.
func (s *Session) Stop() (Meta, error) {
	m := s.meta
	info := s.client.Info()
	if banner := strings.TrimSpace(info.Server); m.Server == "" {
		m.Server = banner
	} else if banner != "" {
		m.Server += ", " + banner
	}
	m.Width, m.Height = s.client.Size()
	m.Password = s.client.Security() != "None" && s.client.Security() != ""
	s.cancel()
	s.client.Close()
	runErr := <-s.done
	err := s.relay.Close()
	if runErr != nil {
		err = errors.Join(err, fmt.Errorf("fbs: recording client: %w", runErr))
	}
	m.Bytes = s.w.Bytes()
	if s.zw != nil {
		err = errors.Join(err, s.zw.Close())
	}
	err = errors.Join(err, s.bw.Flush(), s.f.Close())
	if err != nil {
		return m, err
	}
	blocks, rerr := ReadFile(s.path)
	if rerr != nil {
		return m, rerr
	}
	if len(blocks) > 0 {
		m.DurationMs = blocks[len(blocks)-1].Ms
	}
	return m, WriteMeta(s.path, m)
}
