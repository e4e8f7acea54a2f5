package server

import (
	"time"
)

// Automatic transport (`transport=auto`): a viewer starts on tiles, goes to
// WebSocket video on sustained motion and comes back to tiles once the
// screen has been quiet, by the activity rules of encoders/autoswitch. All
// within one connection: the switch is a transport message and a full
// frame on the new transport.

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
	vc.activity.Reset(time.Now())
	return vc.switchTransport(TransportTiles, "", nil)
}

// autoSwitch moves an auto viewer to video on sustained motion, or back to
// tiles once the screen has been quiet for autoswitch.Still (and nothing
// is pending: dirty false). It reports whether it switched; a full frame is
// then due.
func (vc *viewerConn) autoSwitch(now time.Time, dirty bool) (bool, error) {
	if !vc.activity.Switch(now, vc.video != nil, dirty) {
		return false, nil
	}
	if vc.video == nil {
		vc.log.Info("auto: sustained motion")
		return true, vc.switchTransport(TransportWSVideo, vc.autoCodec, nil)
	}
	vc.log.Info("auto: screen still")
	return true, vc.switchTransport(TransportTiles, "", nil)
}
