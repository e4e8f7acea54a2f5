//go:build !cgo || !libvpx

package video

func vp8Available() error {
	return &UnavailableError{Codec: VP8, Reason: "libvpx not available in this build (build with -tags libvpx and Debian libvpx-dev)"}
}

func newVP8(Options) (Encoder, error) { return nil, vp8Available() }

func newVP8Decoder() (Decoder, error) { return nil, vp8Available() }
