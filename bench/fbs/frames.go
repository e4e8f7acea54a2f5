package fbs

import (
	"context"
	"fmt"
	"strings"

	"kvmgate/framebuffer"
	"kvmgate/rfb"
)

// Options returns the rfb.Options that ask a server for what m says the
// recording client asked for.
func (m Meta) Options() (rfb.Options, error) {
	opts := rfb.NewOptions()
	if len(m.Encodings) > 0 {
		encs, err := rfb.ParseEncodings(strings.Join(m.Encodings, ","))
		if err != nil {
			return opts, fmt.Errorf("fbs: %s: %w", m.Name, err)
		}
		opts.Encodings = encs
	}
	opts.QualityLevel, opts.CompressLevel = m.Quality, m.Compress
	opts.NoContinuousUpdates = m.NoContinuousUpdates
	if m.Password {
		// The challenge and the result are recorded; any answer replays.
		opts.Password = "replay"
	}
	return opts, nil
}

// Frame describes one replayed FramebufferUpdate, published to the
// framebuffer when the callback of Replay runs.
type Frame struct {
	// Index counts the updates from 0.
	Index int
	// Ms is when the update's last byte arrived, in milliseconds since the
	// recording began.
	Ms uint32
	// NextMs is when the next bytes arrived (Ms for the last update): the
	// picture stayed as it is now until then.
	NextMs uint32
	// Offset is the number of recorded bytes consumed up to the end of
	// this update, handshake included.
	Offset int64
	// Last is set for the final update of the recording.
	Last bool
}

// Replay plays a recording to kvmgate's rfb.Client, which decodes it into
// fb exactly as it would decode a live server. After each FramebufferUpdate
// is published it calls fn, with the client stopped until fn returns, so fn
// sees every update's picture (fb.Snapshot, or a viewer's Take). An error
// from fn ends the replay and is returned.
func Replay(ctx context.Context, blocks []Block, m Meta, fb *framebuffer.Framebuffer, fn func(Frame) error) error {
	opts, err := m.Options()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type step struct {
		f    Frame
		cont chan struct{}
	}
	steps := make(chan step)
	var player *Player
	var lastV uint64
	seen := false
	player = NewPlayer(blocks, PlayerOptions{
		MaxRead: 1,
		BeforeRead: func(off int64, ms uint32) {
			v := fb.Version()
			if v == lastV {
				return
			}
			lastV = v
			if !seen {
				// Run's first publish: the empty canvas, before any update.
				seen = true
				return
			}
			s := step{f: Frame{Ms: ms, NextMs: player.NextMs(), Offset: off, Last: player.Done()}, cont: make(chan struct{})}
			if s.f.Last {
				s.f.NextMs = ms
			}
			select {
			case steps <- s:
				select {
				case <-s.cont:
				case <-ctx.Done():
				}
			case <-ctx.Done():
			}
		},
	})
	client, err := rfb.NewClient(ctx, player, opts)
	if err != nil {
		return fmt.Errorf("fbs: %s: replayed handshake: %w", m.Name, err)
	}
	done := make(chan error, 1)
	go func() { done <- client.Run(ctx, fb) }()
	defer func() {
		cancel()
		client.Close()
		<-done
	}()
	index := 0
	for {
		select {
		case s := <-steps:
			s.f.Index = index
			index++
			ferr := fn(s.f)
			close(s.cont)
			if ferr != nil {
				return ferr
			}
		case err := <-done:
			done <- err
			if player.Done() {
				return nil // the recording ended; Run saw EOF
			}
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("fbs: %s: replay stopped at byte %d: %w", m.Name, player.Offset(), err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
