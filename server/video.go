package server

import (
	"errors"
	"fmt"
	"time"

	"kvmgate/encoders/ratectl"
	"kvmgate/encoders/tiles"
	"kvmgate/encoders/video"
)

// Transports a viewer may ask for, with the URL query `transport=` or a
// "transport" message.
const (
	TransportTiles   = "tiles"
	TransportWSVideo = "wsvideo"
	TransportWebRTC  = "webrtc"
	// TransportAuto switches between tiles and WebSocket video with the
	// screen's activity (server/auto.go).
	TransportAuto = "auto"
)

// Video pacing and bitrate bounds for WebSocket video viewers.
const (
	// videoMinInterval caps video at 30 frames per second.
	videoMinInterval = time.Second / 30
	// videoStartBitrate is the target before the link is measured.
	videoStartBitrate = 2_000_000
	// videoMaxBitrate is the highest target in auto mode.
	videoMaxBitrate = 12_000_000
	// videoLowBitrate is the highest target in "low" quality mode.
	videoLowBitrate = 500_000
	// videoAdaptEvery is how often the WebRTC target bitrate moves
	// (WebSocket video: bitrateStep, server/rate.go).
	videoAdaptEvery = 500 * time.Millisecond
	// videoRefineShare: a still screen is refined once at least 1/n of it
	// changed since the last refinement.
	videoRefineShare = 20
)

// transportRequest is what a viewer asked for.
type transportRequest struct {
	Transport string
	Codec     string
}

// transportMsg tells the browser which transport and codec are active.
type transportMsg struct {
	T         string `json:"t"`
	Transport string `json:"transport"`
	Codec     string `json:"codec"`
	// Auto is set while the server picks the transport by activity.
	Auto bool `json:"auto,omitempty"`
}

// videoSender is a WebSocket video viewer's encoder state. It belongs to
// the viewer's sender goroutine, like the rest of viewerConn's sender
// fields.
type videoSender struct {
	codec     string
	enc       video.Encoder // nil until the first frame; replaced on resize
	w, h      int           // enc's picture size
	start     time.Time     // the stream's time zero
	target    int           // bits per second
	lastAdapt time.Time
	changed   int  // pixels changed since the last refinement
	refined   bool // the last frame was a refinement
	frame     []byte
	rtc       *rtcPeer   // WebRTC: pictures go to its track (server/webrtc.go)
	rate      *videoRate // WebSocket video's bitrate controller (server/rate.go)
}

// pts returns the stream time of a picture taken at now.
func (vs *videoSender) pts(now time.Time) time.Duration { return now.Sub(vs.start) }

// transport returns the transport vs sends on.
func (vs *videoSender) transport() string {
	if vs.rtc != nil {
		return TransportWebRTC
	}
	return TransportWSVideo
}

// requestTransport validates a browser's "transport" message and passes it
// to the sender. It runs on the reader goroutine.
func (vc *viewerConn) requestTransport(m clientMsg) {
	switch m.Transport {
	case TransportTiles, TransportWSVideo, TransportWebRTC, TransportAuto:
	default:
		vc.note(fmt.Sprintf("unknown transport %q", m.Transport))
		return
	}
	switch m.Codec {
	case "", video.VP8, video.H264:
	default:
		vc.note(fmt.Sprintf("unknown video codec %q", m.Codec))
		return
	}
	select {
	case vc.transports <- transportRequest{Transport: m.Transport, Codec: m.Codec}:
	default:
		vc.note("transport changes too fast; ignored")
	}
}

// setTransport switches the viewer to the transport it asked for, or the
// best one available after it (webrtc → wsvideo → tiles), and tells the
// browser which one is active. A viewer that asked for nothing stays on
// tiles silently.
func (vc *viewerConn) setTransport(req transportRequest) error {
	if req.Transport == "" && req.Codec == "" {
		return nil
	}
	if req.Transport == TransportAuto {
		return vc.startAuto(req.Codec)
	}
	vc.auto = false
	tr := req.Transport
	switch tr {
	case TransportWebRTC:
		if vc.s.opts.WebRTC.Disabled {
			if err := vc.writeJSON(errorMsg{T: "error", Message: "webrtc is disabled on this server; using WebSocket video"}); err != nil {
				return err
			}
			tr = TransportWSVideo
		}
	case "", TransportWSVideo, TransportTiles:
		if tr == "" {
			tr = TransportWSVideo // a codec alone asks for video
		}
	default:
		if err := vc.writeJSON(errorMsg{T: "error", Message: fmt.Sprintf("unknown transport %q; using tiles", tr)}); err != nil {
			return err
		}
		tr = TransportTiles
	}
	codec := ""
	if tr == TransportWSVideo || tr == TransportWebRTC {
		var err error
		if codec, err = pickCodec(req.Codec); err != nil {
			vc.log.Info("video unavailable", "err", err)
			if err := vc.writeJSON(errorMsg{T: "error", Message: "video unavailable (" + err.Error() + "); using tiles"}); err != nil {
				return err
			}
			tr = TransportTiles
		}
	}
	var peer *rtcPeer
	if tr == TransportWebRTC && (vc.video == nil || vc.video.rtc == nil || vc.video.codec != codec) {
		var err error
		if peer, err = vc.startRTC(codec); err != nil {
			vc.log.Warn("webrtc unavailable", "err", err)
			if err := vc.writeJSON(errorMsg{T: "error", Message: "webrtc unavailable (" + err.Error() + "); using WebSocket video"}); err != nil {
				return err
			}
			tr = TransportWSVideo
		}
	}
	if err := vc.switchTransport(tr, codec, peer); err != nil {
		return err
	}
	if peer != nil {
		if err := vc.sendOffer(peer); err != nil {
			vc.log.Warn("webrtc offer failed", "err", err)
			return vc.rtcFallback("webrtc offer failed")
		}
	}
	return nil
}

// switchTransport makes tr (with codec, and peer for WebRTC) the viewer's
// transport, with a full frame next, and tells the browser.
func (vc *viewerConn) switchTransport(tr, codec string, peer *rtcPeer) error {
	switch {
	case tr == TransportTiles && vc.video != nil:
		vc.stopVideo()
		vc.v.RequestFull()
	case tr == TransportWebRTC && peer != nil,
		tr == TransportWSVideo && (vc.video == nil || vc.video.codec != codec || vc.video.rtc != nil):
		vc.stopVideo()
		// A viewer coming back to video (auto) resumes at the bitrate it
		// left with.
		rate := newVideoRate(videoStartBitrate)
		if vc.lastRate != nil {
			rate = newVideoRate(vc.lastRate.target)
			rate.knee = vc.lastRate.knee
		}
		vc.video = &videoSender{codec: codec, target: rate.target, rtc: peer, rate: rate}
		vc.rc.SetMinInterval(videoMinInterval)
		vc.v.RequestFull()
	}
	vc.log.Info("viewer transport", "transport", tr, "codec", codec, "auto", vc.auto)
	if codec == "" {
		codec = TransportTiles
	}
	return vc.writeJSON(transportMsg{T: "transport", Transport: tr, Codec: codec, Auto: vc.auto})
}

// pickCodec returns want if this build can encode it, else the first
// codec it can, else why none.
func pickCodec(want string) (string, error) {
	var errs []error
	if want != "" {
		err := video.Available(want)
		if err == nil {
			return want, nil
		}
		errs = append(errs, err)
	}
	for _, c := range video.Codecs {
		if c == want {
			continue
		}
		err := video.Available(c)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return "", errors.Join(errs...)
}

// stopVideo frees the video encoder; the viewer is on tiles after.
func (vc *viewerConn) stopVideo() {
	if vc.video == nil {
		return
	}
	if vc.video.enc != nil {
		_ = vc.video.enc.Close()
	}
	if vc.video.rtc != nil {
		vc.video.rtc.close()
	} else {
		vc.lastRate = vc.video.rate
	}
	vc.video = nil
	vc.rc.SetMinInterval(minFrameInterval)
}

// sendNext sends the next frame on the viewer's transport.
func (vc *viewerConn) sendNext(refine bool) error {
	if vc.video != nil {
		return vc.sendVideoFrame(refine)
	}
	return vc.sendFrame(refine)
}

// needsRefine reports whether the picture shown should be refined once
// the screen is still: lossy tiles, or video that changed enough since
// its last refinement.
func (vc *viewerConn) needsRefine() bool {
	if vs := vc.video; vs != nil {
		// On auto, a still screen goes back to tiles instead.
		return !vc.auto && vs.enc != nil && !vs.refined && vs.changed*videoRefineShare >= vc.mirror.W*vc.mirror.H
	}
	return vc.enc.Lossy()
}

// videoStats fills in the transport fields of a stats message.
func (vc *viewerConn) videoStats(m *statsMsg) {
	if vs := vc.video; vs != nil {
		m.Transport, m.Codec, m.Bitrate = vs.transport(), vs.codec, vs.target/1000
		return
	}
	m.Transport, m.Codec = TransportTiles, TransportTiles
}

// sendVideoFrame takes what changed and sends it as one frame: control
// messages first, then a resize and a video config after a size change or
// a full-frame request, the cursor, one encoded picture if the picture
// changed (none if it did not: no frames for a still screen), and a frame
// end. With refine set the picture is re-encoded at high quality.
func (vc *viewerConn) sendVideoFrame(refine bool) error {
	vs := vc.video
	u := vc.v.Take(&vc.mirror)
	if vc.auto {
		vc.activity.Note(time.Now(), &u)
	}
	if u.Empty() && !refine {
		return nil
	}
	if err := vc.sendUpdateMessages(&u); err != nil {
		return err
	}
	buf := vc.buf[:0]
	records := 0
	now := time.Now()
	if u.Resized {
		buf = tiles.AppendResize(buf, u.Width, u.Height)
		records++
		if vs.enc == nil || vs.w != vc.mirror.W || vs.h != vc.mirror.H {
			if err := vc.openVideoEncoder(now); err != nil {
				vc.log.Warn("video encoder failed; falling back to tiles", "err", err)
				vc.buf = buf[:0]
				return vc.fallBackToTiles(err)
			}
		}
	}
	if u.CursorChanged {
		buf = tiles.AppendCursor(buf, u.Cursor)
		records++
	}
	changed := u.Resized || len(u.Damage) > 0 || len(u.Moves) > 0
	if changed || refine {
		vs.adapt(vc.rc, now)
		pts := vs.pts(now)
		var f video.Frame
		var err error
		if refine {
			f, err = vs.enc.Refine(vs.frame[:0], &vc.mirror, pts)
		} else {
			f, err = vs.enc.Encode(vs.frame[:0], &vc.mirror, pts, u.Resized)
		}
		if err != nil {
			vc.log.Error("video encode failed", "err", err)
			return err
		}
		vs.frame = f.Data
		if vs.rtc != nil {
			// WebRTC: the picture goes to the track; resize and cursor
			// records still go over the WebSocket.
			if err := vc.writeSample(f, now); err != nil {
				vc.log.Warn("webrtc write failed", "err", err)
			}
			vc.lastFrameAt = now
			vc.winFrames++
		} else {
			vs.rate.sending(now, len(f.Data))
		}
		if vs.rtc == nil && u.Resized {
			buf = video.AppendConfig(buf, vc.mirror.W, vc.mirror.H, video.WebCodecsString(vs.codec, f.Data))
			records++
		}
		if len(f.Data) > 0 && vs.rtc == nil {
			buf = video.AppendFrame(buf, f, uint32(pts.Milliseconds()))
			records++
		}
		switch {
		case refine:
			vs.refined, vs.changed = true, 0
		case u.Resized:
			vs.refined, vs.changed = false, vc.mirror.W*vc.mirror.H
		default:
			vs.refined = false
			for _, r := range u.Damage {
				vs.changed += r.Area()
			}
			for _, m := range u.Moves {
				vs.changed += m.Src.Area()
			}
		}
	}
	if records == 0 {
		vc.buf = buf
		return nil
	}
	return vc.endFrame(buf, 0)
}

// openVideoEncoder replaces the encoder with one for the mirror's size.
func (vc *viewerConn) openVideoEncoder(now time.Time) error {
	vs := vc.video
	if vs.enc != nil {
		_ = vs.enc.Close()
		vs.enc = nil
	}
	enc, err := video.New(vs.codec, video.Options{Width: vc.mirror.W, Height: vc.mirror.H, Bitrate: vs.target})
	if err != nil {
		return err
	}
	vs.enc, vs.start, vs.w, vs.h = enc, now, vc.mirror.W, vc.mirror.H
	return nil
}

// fallBackToTiles leaves video after an encoder failure: the browser is
// told why and gets a full tiles frame next.
func (vc *viewerConn) fallBackToTiles(cause error) error {
	vc.auto = false
	vc.stopVideo()
	vc.v.RequestFull()
	if err := vc.writeJSON(errorMsg{T: "error", Message: "video failed (" + cause.Error() + "); using tiles"}); err != nil {
		return err
	}
	return vc.writeJSON(transportMsg{T: "transport", Transport: TransportTiles, Codec: TransportTiles})
}

// adapt moves the target bitrate: on WebSocket video videoRate's steps
// (server/rate.go), on WebRTC the GCC estimate at most every
// videoAdaptEvery.
func (vs *videoSender) adapt(rc *ratectl.Controller, now time.Time) {
	if vs.rtc != nil {
		if !vs.lastAdapt.IsZero() && now.Sub(vs.lastAdapt) < videoAdaptEvery {
			return
		}
		vs.lastAdapt = now
		vs.target = rtcBitrate(vs.rtc.bwe.GetTargetBitrate(), rc)
	} else {
		vs.target = vs.rate.update(now, bitrateCeiling(rc.Mode()))
	}
	if vs.enc != nil && vs.enc.Bitrate() != vs.target {
		_ = vs.enc.SetBitrate(vs.target)
	}
}

// bitrateCeiling is the highest video target a quality mode allows.
func bitrateCeiling(mode string) int {
	switch mode {
	case ModeLow:
		return videoLowBitrate
	case ModeLossless:
		return video.MaxBitrate
	}
	return videoMaxBitrate
}

// rtcBitrate is the WebRTC target: the GCC estimate within the quality
// mode's cap.
func rtcBitrate(estimate int, rc *ratectl.Controller) int {
	return max(video.MinBitrate, min(estimate, bitrateCeiling(rc.Mode())))
}
