package harness

import (
	"hash/maphash"
	"math"

	"kvmgate/framebuffer"
)

// sse returns the sum of squared differences of the R, G and B bytes of two
// canvases of the same size, and the number of samples compared.
func sse(a, b *framebuffer.Canvas) (sum float64, n int) {
	return sseBound(a, b, math.Inf(1))
}

// sseBound is sse that may stop early, returning a sum above bound, once
// the sum exceeds bound.
func sseBound(a, b *framebuffer.Canvas, bound float64) (sum float64, n int) {
	if a.W != b.W || a.H != b.H {
		return math.Inf(1), 1
	}
	var total uint64
	for y := 0; y < a.H; y++ {
		ra, rb := a.Row(0, y, a.W), b.Row(0, y, b.W)
		if string(ra) == string(rb) {
			continue
		}
		var s uint64
		for i := 0; i < len(ra); i += 4 {
			dr := int(ra[i]) - int(rb[i])
			dg := int(ra[i+1]) - int(rb[i+1])
			db := int(ra[i+2]) - int(rb[i+2])
			s += uint64(dr*dr + dg*dg + db*db)
		}
		total += s
		if float64(total) > bound {
			break
		}
	}
	return float64(total), a.W * a.H * 3
}

// psnr converts a mean squared error into decibels (+Inf when exact).
func psnr(mse float64) float64 {
	if mse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/mse)
}

// ssimWindow is the edge of the non-overlapping windows SSIM averages over.
const ssimWindow = 8

// ssim returns the mean structural similarity of the luma of a and b over
// 8×8 non-overlapping windows (the constants of Wang et al. 2004 for 8-bit
// samples). Windows that are byte-identical count as 1 without arithmetic.
func ssim(a, b *framebuffer.Canvas) float64 {
	if a.W != b.W || a.H != b.H || a.W < ssimWindow || a.H < ssimWindow {
		return 0
	}
	const c1, c2 = (0.01 * 255) * (0.01 * 255), (0.03 * 255) * (0.03 * 255)
	var total float64
	var count int
	var ya, yb [ssimWindow * ssimWindow]float64
	for y0 := 0; y0+ssimWindow <= a.H; y0 += ssimWindow {
		for x0 := 0; x0+ssimWindow <= a.W; x0 += ssimWindow {
			count++
			same := true
			for y := 0; y < ssimWindow; y++ {
				if string(a.Row(x0, y0+y, ssimWindow)) != string(b.Row(x0, y0+y, ssimWindow)) {
					same = false
					break
				}
			}
			if same {
				total++
				continue
			}
			var ma, mb float64
			for y := 0; y < ssimWindow; y++ {
				ra, rb := a.Row(x0, y0+y, ssimWindow), b.Row(x0, y0+y, ssimWindow)
				for x := 0; x < ssimWindow; x++ {
					i := x * 4
					va := 0.299*float64(ra[i]) + 0.587*float64(ra[i+1]) + 0.114*float64(ra[i+2])
					vb := 0.299*float64(rb[i]) + 0.587*float64(rb[i+1]) + 0.114*float64(rb[i+2])
					ya[y*ssimWindow+x], yb[y*ssimWindow+x] = va, vb
					ma += va
					mb += vb
				}
			}
			const n = ssimWindow * ssimWindow
			ma /= n
			mb /= n
			var va, vb, cov float64
			for i := range n {
				da, db := ya[i]-ma, yb[i]-mb
				va += da * da
				vb += db * db
				cov += da * db
			}
			va /= n - 1
			vb /= n - 1
			cov /= n - 1
			total += ((2*ma*mb + c1) * (2*cov + c2)) / ((ma*ma + mb*mb + c1) * (va + vb + c2))
		}
	}
	if count == 0 {
		return 0
	}
	return total / float64(count)
}

var hashSeed = maphash.MakeSeed()

// hashCanvas returns a hash of a canvas's size and pixels.
func hashCanvas(c *framebuffer.Canvas) uint64 {
	var h maphash.Hash
	h.SetSeed(hashSeed)
	var sz [8]byte
	sz[0], sz[1], sz[2], sz[3] = byte(c.W), byte(c.W>>8), byte(c.W>>16), byte(c.W>>24)
	sz[4], sz[5], sz[6], sz[7] = byte(c.H), byte(c.H>>8), byte(c.H>>16), byte(c.H>>24)
	h.Write(sz[:])
	for y := 0; y < c.H; y++ {
		h.Write(c.Row(0, y, c.W))
	}
	return h.Sum64()
}

// rowHashes returns a hash of every row of c.
func rowHashes(c *framebuffer.Canvas) []uint64 {
	rows := make([]uint64, c.H)
	for y := range rows {
		rows[y] = maphash.Bytes(hashSeed, c.Row(0, y, c.W))
	}
	return rows
}

// sseRows is sseBound for canvases whose row hashes are known: rows with
// equal hashes count as equal without comparing them.
func sseRows(a, b *framebuffer.Canvas, ra, rb []uint64, bound float64) float64 {
	if a.W != b.W || a.H != b.H || len(ra) != a.H || len(rb) != b.H {
		return math.Inf(1)
	}
	var total uint64
	for y := 0; y < a.H; y++ {
		if ra[y] == rb[y] {
			continue
		}
		pa, pb := a.Row(0, y, a.W), b.Row(0, y, b.W)
		var s uint64
		for i := 0; i < len(pa); i += 4 {
			dr := int(pa[i]) - int(pb[i])
			dg := int(pa[i+1]) - int(pb[i+1])
			db := int(pa[i+2]) - int(pb[i+2])
			s += uint64(dr*dr + dg*dg + db*db)
		}
		total += s
		if float64(total) > bound {
			break
		}
	}
	return float64(total)
}
