//go:build cgo && (libvpx || openh264)

package video

import (
	"errors"
	"time"
)

// Helpers shared by the C codec bindings (vp8.go, h264.go); a build without
// them has no use for these.

// evenUp rounds n up to an even number (H.264 4:2:0 needs even sizes).
func evenUp(n int) int { return (n + 1) &^ 1 }

// ptsMillis converts a presentation time to the codecs' millisecond clock.
func ptsMillis(pts time.Duration) int64 { return int64(pts / time.Millisecond) }

// errClosed is returned by a closed encoder or decoder.
var errClosed = errors.New("video: encoder or decoder is closed")

// copyPicture copies a w×h I420 picture from (C) planes into dst's own
// memory, reallocating it when the size changed.
func copyPicture(dst *Picture, w, h int, y []byte, ys int, u, v []byte, cs int) {
	if dst.W != w || dst.H != h || dst.Y == nil {
		*dst = *NewPicture(w, h)
	}
	cw, ch := (w+1)/2, (h+1)/2
	for r := 0; r < h; r++ {
		copy(dst.Y[r*dst.YStride:r*dst.YStride+w], y[r*ys:r*ys+w])
	}
	for r := 0; r < ch; r++ {
		copy(dst.U[r*dst.CStride:r*dst.CStride+cw], u[r*cs:r*cs+cw])
		copy(dst.V[r*dst.CStride:r*dst.CStride+cw], v[r*cs:r*cs+cw])
	}
}
