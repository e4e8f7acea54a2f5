// Package autoswitch holds the activity rules of the server's automatic
// transport (transport=auto): from the damage of a viewer's updates it
// decides when sustained motion should move the viewer from tiles to
// video, and when a quiet screen should bring it back. It is pure (times
// come from the caller), so the server (server/auto.go) and the benchmark
// harness (bench/harness, the auto configuration) run the same rules.
package autoswitch

import (
	"time"

	"kvmgate/encoders/tiles"
	"kvmgate/framebuffer"
)

// The rules: a viewer starts on tiles, goes to video while much of the
// screen keeps changing, and comes back to tiles once the screen has been
// quiet (no update changing more than a sliver of it) for Still, so that
// what stays on screen is pixel-exact.
const (
	// Window is the span motion is judged over: damaged updates in
	// each of its windowSlices parts (sustained motion, not one big redraw).
	Window       = 600 * time.Millisecond
	windowSlices = 3
	// motionUpdates is the fewest damaged updates in the window.
	motionUpdates = 3
	// motionShare: the window's damage must add up to at least 1/n of
	// the screen's area per second.
	motionShare = 3
	// Still is how long the screen must be quiet before video gives
	// way to tiles: no update damaging 1/QuietShare of it or more (a
	// blinking cursor or a ticking clock is quiet; tiles send those
	// exactly).
	Still      = time.Second
	QuietShare = 64
)

// OnsetQuality is the tiles quality of an auto viewer while motion may
// be starting: photo-like areas go as JPEG (refined to lossless once
// quiet, as on a slow link), text stays lossless.
var OnsetQuality = tiles.Quality{Lossy: true, JPEG: 65}

// Activity keeps what a viewer's updates changed. It belongs to the
// viewer's sender goroutine; the zero value is ready (it learns the
// screen's size from the first resize update).
type Activity struct {
	events     []damageEvent // updates of the last Window that were not quiet
	lastChange time.Time     // the last update that was not quiet
	screen     int           // the screen's area in pixels
}

type damageEvent struct {
	at   time.Time
	area int
}

// Note records an update as the sender took it.
func (a *Activity) Note(now time.Time, u *framebuffer.Update) {
	if u.Resized {
		a.screen = u.Width * u.Height
	}
	area := 0
	for _, r := range u.Damage {
		area += r.Area()
	}
	large := area > 0 && area*QuietShare >= a.screen
	if u.Resized || large {
		a.lastChange = now
	}
	if large {
		a.events = append(a.events, damageEvent{now, area})
	}
	a.trim(now)
}

func (a *Activity) trim(now time.Time) {
	i := 0
	for i < len(a.events) && now.Sub(a.events[i].at) > Window {
		i++
	}
	a.events = a.events[i:]
}

// Reset forgets what was seen (a new auto period starts).
func (a *Activity) Reset(now time.Time) {
	a.events, a.lastChange = nil, now
}

// Moving reports sustained motion: over the last Window, at least
// motionUpdates updates that were not quiet, some in each of its
// windowSlices parts, adding up to 1/motionShare of the screen per
// second.
func (a *Activity) Moving(now time.Time) bool {
	a.trim(now)
	if len(a.events) < motionUpdates || a.screen == 0 {
		return false
	}
	area, slices := 0, 0
	for _, e := range a.events {
		area += e.area
		slices |= 1 << min(int(now.Sub(e.at)*windowSlices/Window), windowSlices-1)
	}
	return slices == 1<<windowSlices-1 && float64(area)*motionShare >= float64(a.screen)*Window.Seconds()
}

// Suspect reports that motion may be starting: two updates in the last
// Window (as of the last note) that were not quiet.
func (a *Activity) Suspect() bool { return len(a.events) >= 2 }

// StillAt returns when the screen will have been quiet for Still.
func (a *Activity) StillAt() time.Time { return a.lastChange.Add(Still) }

// Switch reports whether a viewer now on video (onVideo) or on tiles
// should change transport at now: to video on sustained motion, back to
// tiles once the screen has been quiet for Still and nothing is pending
// (pending: an update waits to be sent). When it reports true the activity
// is reset, as a new period starts; a full frame on the new transport is
// then due.
func (a *Activity) Switch(now time.Time, onVideo, pending bool) bool {
	switch {
	case !onVideo && a.Moving(now):
	case onVideo && !pending && !now.Before(a.StillAt()):
	default:
		return false
	}
	a.Reset(now)
	return true
}
