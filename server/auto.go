package server

import (
	"time"

	"kvmgate/encoders/tiles"
	"kvmgate/framebuffer"
)

// Automatic transport (`transport=auto`): a viewer starts on tiles, goes to
// WebSocket video while much of the screen keeps changing, and comes back
// to tiles once the screen has been quiet (no update changing more than a
// sliver of it) for autoStill, so that what stays on screen is pixel-exact. All within one connection: the switch is
// a transport message and a full frame on the new transport.
const (
	// autoWindow is the span motion is judged over: damaged updates in
	// each of its autoSlices parts (sustained motion, not one big redraw).
	autoWindow = 600 * time.Millisecond
	autoSlices = 3
	// autoMotionUpdates is the fewest damaged updates in the window.
	autoMotionUpdates = 3
	// autoMotionShare: the window's damage must add up to at least 1/n of
	// the screen's area per second.
	autoMotionShare = 3
	// autoStill is how long the screen must be quiet before video gives
	// way to tiles: no update damaging 1/autoQuietShare of it or more (a
	// blinking cursor or a ticking clock is quiet; tiles send those
	// exactly).
	autoStill      = time.Second
	autoQuietShare = 64
)

// autoOnsetQuality is the tiles quality of an auto viewer while motion may
// be starting: photo-like areas go as JPEG (refined to lossless once
// quiet, as on a slow link), text stays lossless.
var autoOnsetQuality = tiles.Quality{Lossy: true, JPEG: 65}

// activity keeps what a viewer's updates changed, for transport=auto. It
// belongs to the viewer's sender goroutine.
type activity struct {
	events     []damageEvent // updates of the last autoWindow that were not quiet
	lastChange time.Time     // the last update that was not quiet
	screen     int           // the screen's area in pixels
}

type damageEvent struct {
	at   time.Time
	area int
}

// note records an update as the sender took it.
func (a *activity) note(now time.Time, u *framebuffer.Update) {
	if u.Resized {
		a.screen = u.Width * u.Height
	}
	area := 0
	for _, r := range u.Damage {
		area += r.Area()
	}
	large := area > 0 && area*autoQuietShare >= a.screen
	if u.Resized || large {
		a.lastChange = now
	}
	if large {
		a.events = append(a.events, damageEvent{now, area})
	}
	a.trim(now)
}

func (a *activity) trim(now time.Time) {
	i := 0
	for i < len(a.events) && now.Sub(a.events[i].at) > autoWindow {
		i++
	}
	a.events = a.events[i:]
}

// reset forgets what was seen (a new auto period starts).
func (a *activity) reset(now time.Time) {
	a.events, a.lastChange = nil, now
}

// moving reports sustained motion: over the last autoWindow, at least
// autoMotionUpdates updates that were not quiet, some in each of its
// autoSlices parts, adding up to 1/autoMotionShare of the screen per
// second.
func (a *activity) moving(now time.Time) bool {
	a.trim(now)
	if len(a.events) < autoMotionUpdates || a.screen == 0 {
		return false
	}
	area, slices := 0, 0
	for _, e := range a.events {
		area += e.area
		slices |= 1 << min(int(now.Sub(e.at)*autoSlices/autoWindow), autoSlices-1)
	}
	return slices == 1<<autoSlices-1 && float64(area)*autoMotionShare >= float64(a.screen)*autoWindow.Seconds()
}

// suspect reports that motion may be starting: two updates in the last
// autoWindow (as of the last note) that were not quiet.
func (a *activity) suspect() bool { return len(a.events) >= 2 }

// stillAt returns when the screen will have been quiet for autoStill.
func (a *activity) stillAt() time.Time { return a.lastChange.Add(autoStill) }

// startAuto puts the viewer on transport=auto with codec (empty: the
// server's choice) for its video periods. It starts on tiles; without a
// video codec it stays there.
func (vc *viewerConn) startAuto(codec string) error {
	c, err := pickCodec(codec)
	if err != nil {
		vc.log.Info("video unavailable; auto stays on tiles", "err", err)
		if err := vc.writeJSON(errorMsg{T: "error", Message: "video unavailable (" + err.Error() + "); using tiles"}); err != nil {
			return err
		}
		vc.auto = false
		return vc.switchTransport(TransportTiles, "", nil)
	}
	vc.auto, vc.autoCodec = true, c
	vc.activity.reset(time.Now())
	return vc.switchTransport(TransportTiles, "", nil)
}

// autoSwitch moves an auto viewer to video on sustained motion, or back to
// tiles once the screen has been quiet for autoStill (and nothing is
// pending: dirty false). It reports whether it switched; a full frame is
// then due.
func (vc *viewerConn) autoSwitch(now time.Time, dirty bool) (bool, error) {
	switch {
	case vc.video == nil && vc.activity.moving(now):
		vc.log.Info("auto: sustained motion")
		vc.activity.reset(now)
		return true, vc.switchTransport(TransportWSVideo, vc.autoCodec, nil)
	case vc.video != nil && !dirty && !now.Before(vc.activity.stillAt()):
		vc.log.Info("auto: screen still")
		vc.activity.reset(now)
		return true, vc.switchTransport(TransportTiles, "", nil)
	}
	return false, nil
}
