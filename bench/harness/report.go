package harness

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// baselineFor returns the baseline result for the same workload and link.
func baselineFor(rs []Result, r Result) (Result, bool) {
	for _, b := range rs {
		if b.Encoder == Baseline && b.Workload == r.Workload && b.Link == r.Link {
			return b, true
		}
	}
	return Result{}, false
}

// replayed reports whether a baseline result comes from a loopback
// recording replayed over a slower link (an upper bound on its bytes).
func replayed(b Result) bool { return strings.HasSuffix(b.BaselinePath, "replayed over the link") }

// WriteTable writes the results as an aligned text table.
func WriteTable(w io.Writer, rs []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tencoder\tlink\temu\tframes\tKiB\t×noVNC\tCPU µs/frame\tPSNR dB\tmin dB\tSSIM\tfinal dB\tlossless after\tkey p50/p95 ms\tage p95 ms\t")
	starred := false
	var missing []string
	for _, r := range rs {
		if r.Unavailable != "" {
			m := r.Encoder + ": " + r.Unavailable
			if !slices.Contains(missing, m) {
				missing = append(missing, m)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\tunavailable\t\t\t\t\t\t\t\t\t\t\t\n", r.Workload, r.Encoder, r.Link, r.Emulator)
			continue
		}
		ratio := "—"
		if b, ok := baselineFor(rs, r); ok && b.WireBytes > 0 {
			ratio = fmt.Sprintf("%.2f", float64(r.WireBytes)/float64(b.WireBytes))
			if replayed(b) {
				ratio += "*"
				starred = true
			}
		}
		cpu, keys, age := "—", "—", "—"
		if r.Encoder != Baseline {
			cpu = fmt.Sprintf("%.0f", r.CPUPerFrameUs)
			age = fmt.Sprintf("%.0f", r.AgeP95Ms)
		}
		if r.KeysSent > 0 {
			keys = fmt.Sprintf("%s/%s", r.KeyP50Ms, r.KeyP95Ms)
			if r.KeysSeen < r.KeysSent {
				keys += fmt.Sprintf(" (%d of %d)", r.KeysSeen, r.KeysSent)
			}
		}
		after := "never"
		if r.LosslessAfterMs >= 0 {
			after = fmt.Sprintf("%.0f ms", r.LosslessAfterMs)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%.1f\t%s\t%s\t%s\t%s\t%.4f\t%s\t%s\t%s\t%s\t\n",
			r.Workload, r.Encoder, r.Link, emuShort(r.Emulator), r.Frames, r.SourceFrames, float64(r.WireBytes)/1024, ratio,
			cpu, r.PSNR, r.MinPSNR, r.SSIM, r.FinalPSNR, after, keys, age)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := writeSwitches(w, rs); err != nil {
		return err
	}
	if starred {
		if _, err := fmt.Fprintln(w, "* baseline: loopback recording replayed over the emulated link, no re-pacing (an upper bound on its bytes)"); err != nil {
			return err
		}
	}
	for _, m := range missing {
		if _, err := fmt.Fprintln(w, "unavailable in this build: "+m); err != nil {
			return err
		}
	}
	return nil
}

// emuShort names an emulator in the table.
func emuShort(e string) string {
	if e == "relay (recording)" {
		return "relay"
	}
	return e
}

// WriteJSON writes the results as indented JSON.
func WriteJSON(w io.Writer, rs []Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rs); err != nil {
		return fmt.Errorf("harness: json: %w", err)
	}
	return nil
}

// plotCap is where identical pictures (+Inf dB) are drawn; finite PSNRs
// are clipped below it.
const plotCap = 100.0

var encoderColours = map[string]string{
	TilesLossless: "#1f77b4", TilesLossy: "#ff7f0e", TilesAdaptive: "#2ca02c", Baseline: "#d62728",
	TilesPaced: "#17becf", TilesServer: "#bcbd22", VideoH264: "#9467bd", VideoVP8: "#8c564b",
	Auto: "#e377c2",
}

// WriteSVG writes a plot of wire bytes (log scale) against PSNR, one panel
// per workload, one colour per encoder, points labelled with the link.
// PSNR of identical pictures is drawn at the top edge, marked "lossless".
func WriteSVG(w io.Writer, rs []Result) error {
	var workloads []string
	seen := map[string]bool{}
	for _, r := range rs {
		if !seen[r.Workload] {
			seen[r.Workload] = true
			workloads = append(workloads, r.Workload)
		}
	}
	const pw, ph, ml, mt, mb, mr = 420.0, 300.0, 60.0, 40.0, 50.0, 20.0
	width := float64(len(workloads))*(pw+ml+mr) + 10
	height := ph + mt + mb + 40
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for i, wl := range workloads {
		x0 := float64(i)*(pw+ml+mr) + ml
		var lo, hi = math.Inf(1), math.Inf(-1)
		for _, r := range rs {
			if r.Workload == wl && r.WireBytes > 0 && r.Unavailable == "" {
				v := math.Log10(float64(r.WireBytes))
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
		lo, hi = math.Floor(lo), math.Ceil(hi)
		if hi <= lo {
			hi = lo + 1
		}
		const ylo, yhi = 20.0, plotCap
		px := func(bytes int64) float64 { return x0 + (math.Log10(float64(bytes))-lo)/(hi-lo)*pw }
		py := func(db float64) float64 {
			if !math.IsInf(db, 1) {
				db = math.Min(db, yhi-5)
			}
			db = math.Max(ylo, math.Min(yhi, db))
			return mt + (yhi-db)/(yhi-ylo)*ph
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="20" font-size="13" font-weight="bold">%s</text>`+"\n", x0, html.EscapeString(wl))
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#888"/>`+"\n", x0, mt, pw, ph)
		for e := lo; e <= hi; e++ {
			x := x0 + (e-lo)/(hi-lo)*pw
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#ddd"/>`, x, mt, x, mt+ph)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x, mt+ph+15, humanBytes(math.Pow(10, e)))
		}
		for db := ylo; db <= yhi; db += 20 {
			y := py(db)
			label := fmt.Sprintf("%.0f", db)
			if db == yhi {
				y, label = py(math.Inf(1)), "lossless"
			}
			fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`, x0, y, x0+pw, y)
			fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-4, y+4, label)
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">bytes on the wire (log)</text>`+"\n", x0+pw/2, mt+ph+32)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle" transform="rotate(-90 %.0f %.0f)">PSNR dB (mean over delivered frames)</text>`+"\n",
			x0-40, mt+ph/2, x0-40, mt+ph/2)
		// Points that fall on the same spot share one label.
		type spot struct{ x, y int }
		labels := map[spot][]string{}
		var order []spot
		for _, r := range rs {
			if r.Workload != wl || r.WireBytes <= 0 || r.Unavailable != "" {
				continue
			}
			x, y := px(r.WireBytes), py(float64(r.PSNR))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s" fill-opacity="0.6"><title>%s %s: %d bytes, %s dB</title></circle>`+"\n",
				x, y, encoderColours[r.Encoder], html.EscapeString(r.Encoder), html.EscapeString(r.Link), r.WireBytes, r.PSNR)
			k := spot{int(x / 4), int(y / 4)}
			if _, ok := labels[k]; !ok {
				order = append(order, k)
			}
			if !slices.Contains(labels[k], r.Link) {
				labels[k] = append(labels[k], r.Link)
			}
		}
		for i, k := range order {
			dy := -6 - float64(i%3)*9
			fmt.Fprintf(&b, `<text x="%d" y="%.0f" font-size="8" fill="#555">%s</text>`+"\n", k.x*4+5, float64(k.y*4)+dy, html.EscapeString(strings.Join(labels[k], ", ")))
		}
	}
	lx := ml
	for _, e := range Encoders {
		fmt.Fprintf(&b, `<circle cx="%.0f" cy="%.0f" r="5" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`+"\n",
			lx, height-12, encoderColours[e], lx+8, height-8, e)
		lx += 100
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func humanBytes(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.0fM", v/1e6)
	case v >= 1000:
		return fmt.Sprintf("%.0fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// WriteLatencySVG writes a plot of key-to-screen latency against link
// profile, one panel per workload, one colour per encoder: the dot is the
// median, the bar reaches the 95th percentile (to the top edge when some
// keys were never echoed). The dashed line is each link's RTT + 100 ms.
func WriteLatencySVG(w io.Writer, rs []Result) error {
	var workloads, links, encs []string
	for _, r := range rs {
		if r.KeysSent == 0 {
			continue
		}
		if !slices.Contains(workloads, r.Workload) {
			workloads = append(workloads, r.Workload)
		}
		if !slices.Contains(links, r.Link) {
			links = append(links, r.Link)
		}
		if !slices.Contains(encs, r.Encoder) {
			encs = append(encs, r.Encoder)
		}
	}
	const pw, ph, ml, mt, mb, mr = 360.0, 280.0, 60.0, 40.0, 70.0, 20.0
	width := math.Max(float64(len(workloads))*(pw+ml+mr)+10, float64(len(encs))*110+ml+10)
	height := ph + mt + mb + 30
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	// Log scale from 1 ms to 10 s.
	const lo, hi = 0.0, 4.0
	for i, wl := range workloads {
		x0 := float64(i)*(pw+ml+mr) + ml
		py := func(ms float64) float64 {
			v := math.Log10(math.Max(ms, 1))
			return mt + (hi-math.Min(v, hi))/(hi-lo)*ph
		}
		slot := pw / float64(len(links))
		fmt.Fprintf(&b, `<text x="%.0f" y="20" font-size="13" font-weight="bold">%s</text>`+"\n", x0, html.EscapeString(wl))
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#888"/>`+"\n", x0, mt, pw, ph)
		for e := lo; e <= hi; e++ {
			y := py(math.Pow(10, e))
			fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`, x0, y, x0+pw, y)
			fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%s ms</text>`+"\n", x0-4, y+4, humanBytes(math.Pow(10, e)))
		}
		for j, ln := range links {
			cx := x0 + (float64(j)+0.5)*slot
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="end" transform="rotate(-30 %.1f %.0f)">%s</text>`+"\n",
				cx, mt+ph+14, cx, mt+ph+14, html.EscapeString(ln))
			if l, ok := ProfileByName(ln); ok {
				y := py(float64(l.RTT)/float64(time.Millisecond) + 100)
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000" stroke-dasharray="3,2"/>`+"\n",
					cx-slot/2+4, y, cx+slot/2-4, y)
			}
			for k, enc := range encs {
				for _, r := range rs {
					if r.Workload != wl || r.Link != ln || r.Encoder != enc || r.KeysSent == 0 {
						continue
					}
					x := cx - slot/2 + (float64(k)+1)*slot/float64(len(encs)+1)
					y50, y95 := py(float64(r.KeyP50Ms)), py(float64(r.KeyP95Ms))
					fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`, x, y50, x, y95, encoderColours[enc])
					fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s %s: median %s ms, p95 %s ms, %d/%d echoed</title></circle>`+"\n",
						x, y50, encoderColours[enc], html.EscapeString(enc), html.EscapeString(ln), r.KeyP50Ms, r.KeyP95Ms, r.KeysSeen, r.KeysSent)
				}
			}
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle" transform="rotate(-90 %.0f %.0f)">key-to-screen ms (median, bar to p95)</text>`+"\n",
			x0-45, mt+ph/2, x0-45, mt+ph/2)
	}
	lx := ml
	for _, e := range encs {
		fmt.Fprintf(&b, `<circle cx="%.0f" cy="%.0f" r="5" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`+"\n",
			lx, height-12, encoderColours[e], lx+8, height-8, e)
		lx += 110
	}
	b.WriteString(`<text x="10" y="` + fmt.Sprintf("%.0f", height-28) + `" fill="#555">dashed: RTT + 100 ms (the poor-link goal)</text>` + "\n")
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeSwitches lists the Auto configuration's transport switches.
func writeSwitches(w io.Writer, rs []Result) error {
	for _, r := range rs {
		if r.Encoder != Auto || r.Unavailable != "" {
			continue
		}
		var at []string
		for i, ms := range r.SwitchAtMs {
			to := "video"
			if i%2 == 1 {
				to = "tiles"
			}
			at = append(at, fmt.Sprintf("%s at %.0f ms", to, ms))
		}
		list := ""
		if len(at) > 0 {
			list = ": " + strings.Join(at, ", ")
		}
		if _, err := fmt.Fprintf(w, "auto %s %s: %d switches in a source span of %.0f ms%s\n",
			r.Workload, r.Link, r.Switches, r.SourceSpanMs, list); err != nil {
			return err
		}
	}
	return nil
}
