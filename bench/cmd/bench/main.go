// Command bench runs the encoder benchmark harness (bench/harness) over the
// recorded workloads and prints a table, the full-screen legibility runs
// and the issue-6 goal scoreboard; --json and --svg write the results and a
// bytes-versus-PSNR plot. Usage:
//
//	go run [-tags libvpx,openh264] ./bench/cmd/bench [--quick] [--emulator inproc|tc]
//	    [--json FILE] [--svg FILE] [--latency-svg FILE] [--workloads a,b] [--encoders a,b] [--links a,b]
//	    [--data bench/testdata]
//
// The video configurations need the build tags; without them they are
// reported as unavailable. --emulator tc needs root: it creates network
// namespaces and a tc tbf-shaped veth pair per viewer and runs in real
// time (the sum of the workloads' durations for every viewer).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"kvmgate/bench/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// output is what --json writes.
type output struct {
	Results    []harness.Result     `json:"results"`
	Legibility []harness.Legibility `json:"legibility,omitempty"`
	Goals      []harness.Goal       `json:"goals"`
}

func run() error {
	data := flag.String("data", "bench/testdata", "directory of recorded workloads")
	quick := flag.Bool("quick", false, "reduced matrix: LAN and 256 kbit/s links only, no legibility run on LAN")
	jsonPath := flag.String("json", "", "write the results, legibility runs and goals as JSON to this file")
	svgPath := flag.String("svg", "", "write a bytes-versus-PSNR plot to this SVG file")
	latPath := flag.String("latency-svg", "", "write a key-to-screen latency versus link plot to this SVG file")
	only := flag.String("workloads", "", "comma-separated workload names (default all)")
	encs := flag.String("encoders", "", "comma-separated encoder configurations (default all: "+strings.Join(harness.Encoders, ",")+")")
	links := flag.String("links", "", "comma-separated link profiles (default all)")
	emulator := flag.String("emulator", harness.EmulatorInProc, "link emulator for tiles and video: inproc (virtual time) or tc (network namespaces, tc tbf, real time)")
	noKeys := flag.Bool("no-keys", false, "skip the key-to-screen latency probes")
	noLegibility := flag.Bool("no-legibility", false, "skip the full-screen legibility runs")
	jpegQ := flag.Int("jpeg", 70, "JPEG quality of tiles-lossy")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ws, err := harness.FindWorkloads(*data)
	if err != nil {
		return err
	}
	if *only != "" {
		names := strings.Split(*only, ",")
		ws = slices.DeleteFunc(ws, func(w harness.Workload) bool { return !slices.Contains(names, w.Name) })
		if len(ws) == 0 {
			return fmt.Errorf("no workload named %s in %s", *only, *data)
		}
	}
	opts := harness.Options{JPEGQuality: *jpegQ, Emulator: *emulator, NoKeys: *noKeys}
	if *encs != "" {
		opts.Encoders = strings.Split(*encs, ",")
		for _, e := range opts.Encoders {
			if !slices.Contains(harness.Encoders, e) {
				return fmt.Errorf("unknown encoder %q (have %s)", e, strings.Join(harness.Encoders, ","))
			}
		}
	}
	poor, _ := harness.ProfileByName(harness.PoorLink)
	switch {
	case *links != "":
		for _, n := range strings.Split(*links, ",") {
			l, ok := harness.ProfileByName(n)
			if !ok {
				return fmt.Errorf("unknown link profile %q", n)
			}
			opts.Links = append(opts.Links, l)
		}
	case *quick:
		opts.Links = []harness.Link{harness.Profiles[0], poor}
	}
	var all []harness.Result
	for _, w := range ws {
		start := time.Now()
		rs, err := harness.Run(ctx, w, opts)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s: %d results in %v\n", w.Name, len(rs), time.Since(start).Round(time.Millisecond))
		all = append(all, rs...)
	}
	if err := harness.WriteTable(os.Stdout, all); err != nil {
		return err
	}
	var leg []harness.Legibility
	console := filepath.Join(*data, "linux-console.fbs.gz")
	if !*noLegibility {
		legLinks := opts.Links
		if len(legLinks) == 0 {
			legLinks = harness.Profiles
		}
		if *quick && *links == "" {
			legLinks = []harness.Link{poor}
		}
		legEncs := []string{harness.TilesLossless, harness.TilesAdaptive, harness.TilesPaced, harness.TilesServer, harness.VideoH264, harness.VideoVP8}
		if opts.Encoders != nil {
			legEncs = slices.DeleteFunc(slices.Clone(opts.Encoders), func(e string) bool { return e == harness.Baseline })
		}
		for _, l := range legLinks {
			for _, e := range legEncs {
				r, err := harness.RunLegibility(ctx, console, e, l, opts)
				if err != nil {
					if errors.Is(err, harness.ErrUnavailable) {
						continue // video without its build tag: the table says so
					}
					return err
				}
				leg = append(leg, r)
			}
		}
		fmt.Println("\nFull-screen legibility: a 1024×768 screen of VGA text replaced by another one")
		if err := harness.WriteLegibility(os.Stdout, leg); err != nil {
			return err
		}
	}
	goals := harness.Goals(all, leg)
	fmt.Println("\nIssue-6 goals (" + poor.String() + ")")
	if err := harness.WriteGoals(os.Stdout, goals); err != nil {
		return err
	}
	if *jsonPath != "" {
		if err := writeFile(*jsonPath, func(f *os.File) error {
			enc := json.NewEncoder(f)
			enc.SetIndent("", "  ")
			return enc.Encode(output{all, leg, goals})
		}); err != nil {
			return err
		}
	}
	if *svgPath != "" {
		if err := writeFile(*svgPath, func(f *os.File) error { return harness.WriteSVG(f, all) }); err != nil {
			return err
		}
	}
	if *latPath != "" {
		if err := writeFile(*latPath, func(f *os.File) error { return harness.WriteLatencySVG(f, all) }); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, fn func(*os.File) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
