//go:build !cgo || novpx

package video

func vp8Available() error {
	return &UnavailableError{Codec: VP8, Reason: "libvpx not available in this build"}
}

func newVP8(Options) (Encoder, error) { return nil, vp8Available() }

func newVP8Decoder() (Decoder, error) { return nil, vp8Available() }
