// Command bench runs the encoder benchmark harness (bench/harness) over the
// recorded workloads and prints a table; --json and --svg write the results
// and a bytes-versus-PSNR plot. Usage:
//
//	go run ./bench/cmd/bench [--quick] [--json FILE] [--svg FILE] [--workloads a,b] [--data bench/testdata]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"kvmgate/bench/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	data := flag.String("data", "bench/testdata", "directory of recorded workloads")
	quick := flag.Bool("quick", false, "reduced matrix: LAN and 256 kbit/s links only")
	jsonPath := flag.String("json", "", "write the results as JSON to this file")
	svgPath := flag.String("svg", "", "write a bytes-versus-PSNR plot to this SVG file")
	only := flag.String("workloads", "", "comma-separated workload names (default all)")
	jpegQ := flag.Int("jpeg", 70, "JPEG quality of tiles-lossy")
	flag.Parse()

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
	opts := harness.Options{JPEGQuality: *jpegQ}
	if *quick {
		opts.Links = []harness.Link{harness.Profiles[0], harness.Profiles[len(harness.Profiles)-1]}
	}
	var all []harness.Result
	for _, w := range ws {
		start := time.Now()
		rs, err := harness.Run(context.Background(), w, opts)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s: %d results in %v\n", w.Name, len(rs), time.Since(start).Round(time.Millisecond))
		all = append(all, rs...)
	}
	if err := harness.WriteTable(os.Stdout, all); err != nil {
		return err
	}
	if *jsonPath != "" {
		if err := writeFile(*jsonPath, func(f *os.File) error { return harness.WriteJSON(f, all) }); err != nil {
			return err
		}
	}
	if *svgPath != "" {
		if err := writeFile(*svgPath, func(f *os.File) error { return harness.WriteSVG(f, all) }); err != nil {
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
