//go:build cgo && libvpx && openh264

package video_test

import (
	"os"
	"os/exec"
	"testing"
)

// TestBuildsWithoutLibraries builds the kvmgate binary without cgo and runs
// this package's tests in that configuration and in a build without the
// codec tags, where video reports that the codecs are unavailable and the
// server falls back to tiles.
func TestBuildsWithoutLibraries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary again without cgo")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	run := func(env []string, args ...string) {
		t.Helper()
		cmd := exec.Command(gobin, args...)
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%v go %v: %v\n%s", env, args, err, out)
		}
	}
	run([]string{"CGO_ENABLED=0"}, "build", "-o", os.DevNull, "kvmgate/cmd/kvmgate")
	run(nil, "build", "-o", os.DevNull, "kvmgate/cmd/kvmgate")
	run([]string{"CGO_ENABLED=0"}, "test", "-count=1", "-run", "^TestUnavailable$", ".")
	run(nil, "test", "-count=1", "-run", "^TestUnavailable$", ".")
	// The server's fallback to tiles, in a build without the codecs.
	run(nil, "test", "-count=1", "-run", "^TestVideoUnavailableFallsBackToTiles$", "kvmgate/server")
}
