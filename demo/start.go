package demo

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"kvmgate/rfbserver"
)

// Start runs a demo Console and an RFB server for it on opts.Listen
// (default 127.0.0.1:0) until ctx ends. It returns the server's address,
// e.g. "127.0.0.1:41234", for a vnc:// target.
func Start(ctx context.Context, opts Options) (addr string, c *Console, err error) {
	c, err = New(opts)
	if err != nil {
		return "", nil, err
	}
	listen := opts.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return "", nil, fmt.Errorf("demo: listen: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	srv := &rfbserver.Server{FB: c.fb, Input: c, Password: opts.Password, Name: Title, Logger: log}
	c.done = make(chan struct{})
	go func() {
		defer close(c.done)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = c.Run(ctx)
		}()
		if err := srv.Serve(ctx, ln); err != nil {
			log.Error("demo: RFB server stopped", "err", err)
		}
		<-done
	}()
	return ln.Addr().String(), c, nil
}

// Done returns a channel closed once a Console started by Start has
// stopped (its RFB server and animation ended after ctx did). It is nil
// for a Console made with New.
func (c *Console) Done() <-chan struct{} { return c.done }
