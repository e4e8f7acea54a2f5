package websockify

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// recorder writes one connection's traffic in websockify's --record format:
// a JavaScript array of strings, "{ms{bytes" for what went to the browser
// and "}ms}bytes" for what came from it, the bytes escaped as Python's
// unicode_escape writes Latin-1, closed by 'EOF'. noVNC's session player
// replays such files. A nil *recorder records nothing.
type recorder struct {
	start time.Time

	mu sync.Mutex
	// mu guards the following.
	f   *os.File
	w   *bufio.Writer
	err error
}

// newRecorder creates dir/name.
func newRecorder(dir, name string) (*recorder, error) {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("websockify: record: %w", err)
	}
	r := &recorder{start: time.Now(), f: f, w: bufio.NewWriterSize(f, 64<<10)}
	r.w.WriteString("var VNC_frame_data = [\n")
	return r, nil
}

func (r *recorder) toClient(p []byte)   { r.frame('{', p) }
func (r *recorder) fromClient(p []byte) { r.frame('}', p) }

func (r *recorder) frame(dir byte, p []byte) {
	if r == nil {
		return
	}
	ms := time.Since(r.start).Milliseconds()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
	b := make([]byte, 0, 16+2*len(p))
	b = append(b, '\'', dir)
	b = fmt.Appendf(b, "%d", ms)
	b = append(b, dir)
	b = appendEscaped(b, p)
	b = append(b, "',\n"...)
	_, r.err = r.w.Write(b)
}

// Close ends the file.
func (r *recorder) Close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.w.WriteString("'EOF'];\n")
	err := r.w.Flush()
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	if r.err != nil {
		err = r.err
	}
	if err != nil {
		return fmt.Errorf("websockify: record: %w", err)
	}
	return nil
}

const hexDigits = "0123456789abcdef"

// appendEscaped escapes bytes as Python's unicode_escape does for Latin-1
// text, with ' escaped too, as websockify writes them.
func appendEscaped(b, p []byte) []byte {
	for _, c := range p {
		switch {
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\'':
			b = append(b, '\\', '\'')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c >= 0x20 && c < 0x7f:
			b = append(b, c)
		default:
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return b
}
