// Package video encodes a console's framebuffer as a video stream (VP8 on
// libvpx, H.264 constrained baseline on openh264) for the WebSocket video
// and WebRTC transports, and decodes such streams back for tests and
// benchmarks.
//
// The codecs are C libraries reached through cgo, compiled in only with the
// build tags libvpx and openh264 (Debian's libvpx-dev and libopenh264-dev):
//
//	go build -tags libvpx,openh264 ./cmd/kvmgate
//
// A plain build needs no C library at build or run time: New and NewDecoder
// then return an *UnavailableError naming what is missing, and viewers stay
// on tiles.
//
// Encoders hold C memory and are not safe for concurrent use: one goroutine
// (a viewer's sender) owns each one and must Close it.
package video

import (
	"errors"
	"fmt"
	"time"

	"kvmgate/framebuffer"
)

// Codec names, as used in the wire protocol's transport messages.
const (
	VP8  = "vp8"
	H264 = "h264"
)

// Codecs lists the codec names this package knows, in order of preference.
var Codecs = []string{VP8, H264}

// Bitrate limits an encoder accepts (bits per second); SetBitrate clamps.
const (
	MinBitrate     = 100_000
	MaxBitrate     = 50_000_000
	DefaultBitrate = 2_000_000
)

// Options configures a new encoder.
type Options struct {
	// Width and Height are the picture size; every Encode must pass a
	// canvas of this size.
	Width, Height int
	// Bitrate is the initial target in bits per second; 0 means
	// DefaultBitrate.
	Bitrate int
	// KeyframeInterval is the longest time between keyframes the encoder
	// inserts by itself; 0 means only on demand (the first frame and
	// Encode's keyframe flag).
	KeyframeInterval time.Duration
	// Threads is the number of encoder threads; 0 means 1.
	Threads int
}

// Frame is one encoded picture: a VP8 frame, or an H.264 access unit as
// Annex B NAL units with start codes.
type Frame struct {
	Data     []byte
	Keyframe bool
}

// Encoder turns successive framebuffer pictures into one video stream.
type Encoder interface {
	// Codec returns the codec name (VP8 or H264).
	Codec() string
	// Encode compresses src (which must have the encoder's size), shown at
	// pts from the start of the stream; pts must grow. With keyframe set
	// the frame is a keyframe. Frame.Data is appended to dst. An encoder
	// may return a Frame with no data when its rate control skips a
	// picture.
	Encode(dst []byte, src *framebuffer.Canvas, pts time.Duration, keyframe bool) (Frame, error)
	// Refine encodes src at high quality whatever the bitrate target, for a
	// screen that went still: what the viewer keeps looking at is then
	// sharp (text stays legible), as tiles refine lossy areas. The frame is
	// a keyframe (VP8: with a low quantizer; H.264: at a raised bitrate):
	// refining with delta frames gains little in either codec.
	Refine(dst []byte, src *framebuffer.Canvas, pts time.Duration) (Frame, error)
	// SetBitrate changes the target bitrate (bits per second), clamped to
	// [MinBitrate, MaxBitrate].
	SetBitrate(bps int) error
	// Bitrate returns the current target bitrate.
	Bitrate() int
	// Close frees the encoder's C memory. The encoder is unusable after.
	Close() error
}

// Decoder turns a video stream back into pictures.
type Decoder interface {
	// Decode decodes one frame as Encode produced it and returns the
	// picture, or nil when the frame produced none. The picture is valid
	// until the next Decode.
	Decode(data []byte) (*Picture, error)
	// Close frees the decoder's C memory.
	Close() error
}

// UnavailableError reports a codec this build or machine cannot use.
type UnavailableError struct {
	Codec  string
	Reason string
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("%s: %s", e.Codec, e.Reason)
}

// ErrUnknownCodec is returned for a codec name this package does not know.
var ErrUnknownCodec = errors.New("video: unknown codec")

// Available returns nil if New can create encoders for codec, else why not
// (an *UnavailableError, or ErrUnknownCodec).
func Available(codec string) error {
	switch codec {
	case VP8:
		return vp8Available()
	case H264:
		return h264Available()
	}
	return fmt.Errorf("%w %q", ErrUnknownCodec, codec)
}

// New returns an encoder for codec.
func New(codec string, opts Options) (Encoder, error) {
	if err := framebuffer.CheckSize(opts.Width, opts.Height); err != nil {
		return nil, fmt.Errorf("video: %s encoder: %w", codec, err)
	}
	if opts.Bitrate == 0 {
		opts.Bitrate = DefaultBitrate
	}
	opts.Bitrate = clampBitrate(opts.Bitrate)
	if opts.Threads <= 0 {
		opts.Threads = 1
	}
	switch codec {
	case VP8:
		return newVP8(opts)
	case H264:
		return newH264(opts)
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownCodec, codec)
}

// NewDecoder returns a decoder for codec.
func NewDecoder(codec string) (Decoder, error) {
	switch codec {
	case VP8:
		return newVP8Decoder()
	case H264:
		return newH264Decoder()
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownCodec, codec)
}

func clampBitrate(bps int) int { return min(max(bps, MinBitrate), MaxBitrate) }

// WebCodecsString returns the codec string a browser's VideoDecoder takes
// for a stream of codec whose first keyframe is key: "vp8", or
// "avc1.PPCCLL" from the H.264 sequence parameter set in key (constrained
// baseline 3.1 if key has none).
func WebCodecsString(codec string, key []byte) string {
	if codec != H264 {
		return codec
	}
	if sps := findNAL(key, 7); len(sps) >= 4 {
		return fmt.Sprintf("avc1.%02x%02x%02x", sps[1], sps[2], sps[3])
	}
	return "avc1.42e01f"
}

// findNAL returns the first Annex B NAL unit of type typ in b, from its
// header byte on, or nil.
func findNAL(b []byte, typ byte) []byte {
	for i := 0; i+3 < len(b); i++ {
		if b[i] != 0 || b[i+1] != 0 || b[i+2] != 1 {
			continue
		}
		nal := b[i+3:]
		if nal[0]&0x1f != typ {
			continue
		}
		for j := 0; j+2 < len(nal); j++ {
			if nal[j] == 0 && nal[j+1] == 0 && (nal[j+2] == 1 || nal[j+2] == 0) {
				return nal[:j]
			}
		}
		return nal
	}
	return nil
}
