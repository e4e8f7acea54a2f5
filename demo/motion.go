package demo

import (
	"math"
	"time"

	"kvmgate/framebuffer"
)

// Heavy motion (Options.Motion): a plasma, a colour field that changes
// everywhere in every frame, over the right half of the screen between the
// title bar and the box strip. It stands for video playback or a 3D scene
// in a console, the load WebSocket video and WebRTC are for; its moving
// bright stripes keep some sharp edges in it.

// motionFrameTime is the motion area's frame period (30 frames a second).
const motionFrameTime = time.Second / 30

var (
	// sinTab is 127·sin over one period of 256 steps.
	sinTab [256]int32
	// plasmaPalette maps a plasma value to RGBA (as Canvas.Fill takes it).
	plasmaPalette [256]uint32
)

func init() {
	for i := range sinTab {
		sinTab[i] = int32(math.Round(127 * math.Sin(float64(i)*2*math.Pi/256)))
	}
	for i := range plasmaPalette {
		a := float64(i) * 2 * math.Pi / 256
		r := 128 + 127*math.Sin(a)
		g := 128 + 127*math.Sin(a+2*math.Pi/3)
		b := 128 + 127*math.Sin(a+4*math.Pi/3)
		plasmaPalette[i] = uint32(r) | uint32(g)<<8 | uint32(b)<<16 | 0xff000000
	}
}

// drawMotion draws motion frame t into r of c and damages r. mu must be
// held.
func (c *Console) drawMotion(t int) {
	r := c.motion
	if r.Empty() {
		return
	}
	t32 := int32(t)
	for y := 0; y < r.H; y++ {
		px := c.canvas.Row(r.X, r.Y+y, r.W)
		y32 := int32(y)
		rowA := sinTab[uint8(y32*2-t32*3)]
		stripe := (y+t*4)%48 < 3
		for x := 0; x < r.W; x++ {
			x32 := int32(x)
			v := sinTab[uint8(x32*3/2+t32*4)] + rowA +
				sinTab[uint8((x32+y32)+t32*2)] + sinTab[uint8(x32-y32*2+t32*5)]
			col := plasmaPalette[uint8(v/2)]
			if stripe || (x+t*3)%64 < 2 {
				col = 0xffffffff
			}
			i := x * 4
			px[i], px[i+1], px[i+2], px[i+3] = byte(col), byte(col>>8), byte(col>>16), 0xff
		}
	}
	c.batch.Damage(r)
}

// motionRect is the motion area of a w×h screen.
func motionRect(w, h int) framebuffer.Rect {
	x := w / 2
	return framebuffer.Rect{X: x, Y: titleH, W: w - x, H: h - titleH - animH}
}
