package harness

import (
	"time"

	"kvmgate/encoders/autoswitch"
	"kvmgate/encoders/video"
	"kvmgate/framebuffer"
)

// The Auto configuration: server/auto.go's transport=auto on the replayed
// workloads. One viewer, a tiles sender (as TilesPaced: the link's rate as
// an oracle, paced refinement) and a WebSocket video sender (as the video
// configurations, with the codec the server would pick), switched by the
// server's own activity rules (encoders/autoswitch): to video on sustained
// motion, back to tiles once the screen has been quiet for
// autoswitch.Still. A switch sends a full frame on the new transport, as
// server/video.go's switchTransport does; while motion may be starting,
// tiles send photo-like areas at autoswitch.OnsetQuality.

// autoEpoch is the wall-clock instant of virtual time 0 for the activity
// rules, which work on time.Time.
var autoEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// autoCodec is a transport=auto viewer: tiles or video, by activity.
type autoCodec struct {
	tiles   *tilesCodec
	video   *videoCodec
	act     autoswitch.Activity
	onVideo bool
	// switches are the virtual times of the switches, alternately to
	// video and back to tiles.
	switches []time.Duration
}

// autoVideoCodec returns the codec the server's pickCodec would choose
// when the viewer names none, or "" if no video codec is built in.
func autoVideoCodec() string {
	for _, c := range video.Codecs {
		if video.Available(c) == nil {
			return c
		}
	}
	return ""
}

func newAutoCodec(jpegQ int) (*autoCodec, error) {
	vc, err := newVideoCodec(autoVideoCodec())
	if err != nil {
		return nil, err
	}
	c := &autoCodec{tiles: newTilesCodec(TilesPaced, jpegQ), video: vc}
	c.act.Reset(autoEpoch)
	return c, nil
}

func (c *autoCodec) active() frameCodec {
	if c.onVideo {
		return c.video
	}
	return c.tiles
}

func (c *autoCodec) adaptive() bool               { return true }
func (c *autoCodec) needsRefine() bool            { return c.active().needsRefine() }
func (c *autoCodec) refining() bool               { return c.active().refining() }
func (c *autoCodec) picture() *framebuffer.Canvas { return c.active().picture() }
func (c *autoCodec) close()                       { c.tiles.close(); c.video.close() }

// wakeAt is when a viewer on video goes back to tiles if nothing changes.
func (c *autoCodec) wakeAt() time.Duration {
	if !c.onVideo {
		return -1
	}
	return c.act.StillAt().Sub(autoEpoch)
}

// encode is server/ws.go's loop for an auto viewer: the switch decision
// with what earlier frames took, then Take, Note and the active sender.
func (c *autoCodec) encode(fv *framebuffer.Viewer, mirror *framebuffer.Canvas, at time.Duration, refine bool, bps float64, frameNo uint32) ([]byte, error) {
	now := autoEpoch.Add(at)
	switched := c.act.Switch(now, c.onVideo, !refine)
	if switched {
		c.onVideo = !c.onVideo
		c.switches = append(c.switches, at)
	}
	u := fv.Take(mirror)
	c.act.Note(now, &u)
	if switched {
		// A full frame on the new transport.
		u.Resized, u.Width, u.Height = true, mirror.W, mirror.H
		u.Damage, u.Moves = []framebuffer.Rect{mirror.Bounds()}, nil
		refine = false
	}
	if c.onVideo {
		return c.video.encodeUpdate(&u, mirror, at, refine, bps, frameNo)
	}
	c.tiles.onset = c.act.Suspect()
	return c.tiles.encodeUpdate(&u, mirror, at, refine, bps, frameNo)
}

func (c *autoCodec) decode(buf []byte) (*framebuffer.Canvas, error) {
	return c.active().decode(buf)
}

// stats fills in the switch figures: how many, and when after the
// source's first change.
func (c *autoCodec) stats(res *Result, firstChange, lastChange time.Duration) {
	res.Switches = len(c.switches)
	res.SourceSpanMs = float64(lastChange-firstChange) / float64(time.Millisecond)
	for _, at := range c.switches {
		res.SwitchAtMs = append(res.SwitchAtMs, float64(at-firstChange)/float64(time.Millisecond))
	}
}
