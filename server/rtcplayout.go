package server

import (
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// playoutDelayURI names the RTP header extension by which a sender tells
// the receiver how long it may hold frames before rendering them.
const playoutDelayURI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"

// playoutDelayZero is the extension's payload for a minimum and maximum
// delay of 0 (two 12-bit counts of 10 ms): render each frame as soon as it
// is decoded. Chromium then skips its jitter buffer's playout delay, which
// it otherwise grows with the irregular timing of frames from a busy
// encoder, for H.264 to hundreds of milliseconds on a loss-free loopback.
var playoutDelayZero = []byte{0, 0, 0}

// playoutDelayInterceptor puts playoutDelayZero on every outgoing video
// packet of a stream that negotiated the extension.
type playoutDelayInterceptor struct {
	interceptor.NoOp
}

// playoutDelayFactory makes playoutDelayInterceptors for an
// interceptor.Registry.
type playoutDelayFactory struct{}

// NewInterceptor implements interceptor.Factory.
func (playoutDelayFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &playoutDelayInterceptor{}, nil
}

// BindLocalStream implements interceptor.Interceptor: it wraps writer to
// set the extension when the remote side accepted it.
func (*playoutDelayInterceptor) BindLocalStream(info *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	id := 0
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == playoutDelayURI {
			id = e.ID
		}
	}
	if id == 0 {
		return writer
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if err := h.SetExtension(uint8(id), playoutDelayZero); err != nil {
			return 0, err
		}
		return writer.Write(h, payload, a)
	})
}
