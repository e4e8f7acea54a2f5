package session

import (
	"context"
	"fmt"
	"time"

	"kvmgate/backend"
)

// resizeRequest is a viewer's wish for the console's display size.
type resizeRequest struct {
	v    *Viewer
	w, h int
}

// ClampResize bounds a requested display size to MinResizeWidth ×
// MinResizeHeight .. MaxResizeSize × MaxResizeSize.
func ClampResize(w, h int) (int, int) {
	return max(MinResizeWidth, min(w, MaxResizeSize)), max(MinResizeHeight, min(h, MaxResizeSize))
}

// Resize asks the console to make its display w×h (clamped with
// ClampResize), like input: only viewers allowed to send input should call
// it. Requests are coalesced per session: the latest one wins, at most one
// is sent every ResizeInterval, and one for the size the framebuffer already
// has is dropped. It returns an error at once when the console cannot
// resize at all; the console's own answer (a refusal, say) arrives later on
// Errors.
func (v *Viewer) Resize(w, h int) error {
	s := v.s
	if s.ctx.Err() != nil {
		return ErrEnded
	}
	con := s.currentConsole()
	if con == nil {
		return ErrNoBackend
	}
	if _, ok := con.(backend.Resizer); !ok {
		return fmt.Errorf("session: this %s console cannot resize its display: %w", s.BackendInfo().Protocol, backend.ErrUnsupported)
	}
	w, h = ClampResize(w, h)
	s.resizeMu.Lock()
	defer s.resizeMu.Unlock()
	s.resizeWant = &resizeRequest{v: v, w: w, h: h}
	if !s.resizing {
		s.resizing = true
		s.hub.wg.Add(1)
		go s.resizeLoop()
	}
	return nil
}

// resizeLoop sends the pending resize requests, one at a time and at most
// one per ResizeInterval, and returns when none is left or the session
// ends.
func (s *Session) resizeLoop() {
	defer s.hub.wg.Done()
	for {
		s.resizeMu.Lock()
		req := s.resizeWant
		if req == nil || s.ctx.Err() != nil {
			s.resizing, s.resizeWant = false, nil
			s.resizeMu.Unlock()
			return
		}
		if wait := time.Until(s.resizeLast.Add(ResizeInterval)); wait > 0 {
			s.resizeMu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
			}
			continue
		}
		s.resizeWant = nil
		s.resizeLast = time.Now()
		s.resizeMu.Unlock()
		s.resize(req)
	}
}

// resize sends one request to the current console and reports a failure
// to the viewer that asked.
func (s *Session) resize(req *resizeRequest) {
	if w, h := s.fb.Size(); w == req.w && h == req.h {
		return
	}
	r, ok := s.currentConsole().(backend.Resizer)
	if !ok {
		req.v.report(ErrNoBackend)
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, resizeTimeout)
	defer cancel()
	s.hub.log.Info("resizing console", "session", s.id, "viewer", req.v.id, "width", req.w, "height", req.h)
	if err := r.Resize(ctx, req.w, req.h); err != nil && s.ctx.Err() == nil {
		req.v.report(fmt.Errorf("resize to %dx%d: %w", req.w, req.h, err))
	}
}
