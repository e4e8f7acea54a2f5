//go:build !cgo || (!libvpx && !openh264)

package video_test

import (
	"errors"
	"testing"

	"kvmgate/encoders/video"
)

// TestUnavailable checks what a build without the codec libraries says.
func TestUnavailable(t *testing.T) {
	want := map[string]string{
		video.VP8:  "vp8: libvpx not available in this build (build with -tags libvpx and Debian libvpx-dev)",
		video.H264: "h264: openh264 not available in this build (build with -tags openh264 and Debian libopenh264-dev)",
	}
	for codec, msg := range want {
		err := video.Available(codec)
		var ue *video.UnavailableError
		if !errors.As(err, &ue) || err.Error() != msg {
			t.Errorf("Available(%s) = %v, want %q", codec, err, msg)
		}
		if _, err := video.New(codec, video.Options{Width: 64, Height: 48}); !errors.As(err, &ue) {
			t.Errorf("New(%s) error = %v, want an *UnavailableError", codec, err)
		}
		if _, err := video.NewDecoder(codec); !errors.As(err, &ue) {
			t.Errorf("NewDecoder(%s) error = %v, want an *UnavailableError", codec, err)
		}
	}
}
