//go:build !cgo || !openh264

package video

func h264Available() error {
	return &UnavailableError{Codec: H264, Reason: "openh264 not available in this build (build with -tags openh264 and Debian libopenh264-dev)"}
}

func newH264(Options) (Encoder, error) { return nil, h264Available() }

func newH264Decoder() (Decoder, error) { return nil, h264Available() }
