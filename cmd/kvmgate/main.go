// Command kvmgate is a console gateway: it connects to a machine's console
// (RFB/VNC today), decodes the screen server-side and serves it to browsers.
//
// Usage:
//
//	kvmgate <command> [flags]
//
// Each command lives in its own file and registers itself from init with
// register, so adding one is a new file and nothing else.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
)

// command is one kvmgate subcommand.
type command struct {
	// Name is what the user types: "snapshot", "serve", ...
	Name string
	// Summary is a one-line description for the usage text.
	Summary string
	// Run executes the command with the arguments after its name. It
	// returns nil for success or an error, ideally an *exitError carrying
	// the exit status.
	Run func(ctx context.Context, args []string) error
}

// commands holds the registered subcommands by name.
var commands = map[string]*command{}

// register adds a subcommand; it is called from each command file's init.
func register(c *command) {
	if _, dup := commands[c.Name]; dup {
		panic("kvmgate: command " + c.Name + " registered twice")
	}
	commands[c.Name] = c
}

// exitError is an error with the process exit status it should cause.
type exitError struct {
	Code int
	Err  error
}

func (e *exitError) Error() string { return e.Err.Error() }
func (e *exitError) Unwrap() error { return e.Err }

// Exit statuses shared by the commands.
const (
	exitFailure     = 1 // anything else
	exitUsage       = 2 // bad command line
	exitAuth        = 3 // the server refused our credentials or the connection
	exitUnreachable = 4 // could not connect
	exitProtocol    = 5 // the server broke the protocol or needs what we lack
	exitTimeout     = 6 // the operation did not finish in time
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func init() {
	register(&command{Name: "version", Summary: "print the kvmgate version", Run: runVersion})
	register(&command{Name: "help", Summary: "show help for kvmgate or a command", Run: runHelp})
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches args to a command and returns the exit status.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		usage(stderr)
		return 0
	case "-version", "--version":
		name = "version"
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "kvmgate: unknown command %q\n\n", name)
		usage(stderr)
		return exitUsage
	}
	err := c.Run(ctx, args[1:])
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.Err != nil && ee.Err.Error() != "" {
			fmt.Fprintf(stderr, "kvmgate %s: %v\n", name, ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintf(stderr, "kvmgate %s: %v\n", name, err)
	return exitFailure
}

func usage(w io.Writer) {
	fmt.Fprint(w, `kvmgate: a console gateway that decodes VNC (and more) server-side and
streams it to browsers.

Usage:
  kvmgate <command> [flags]

Commands:
`)
	for _, n := range sortedNames() {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].Summary)
	}
	fmt.Fprint(w, `
Run "kvmgate <command> -h" for a command's flags.

Exit status: 0 success, 1 failure, 2 usage error, 3 authentication refused,
4 server unreachable, 5 protocol error, 6 timeout.
`)
}

func runVersion(ctx context.Context, args []string) error {
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok {
			if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				v = bi.Main.Version
			}
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					v += " " + s.Value[:12]
				}
			}
		}
	}
	fmt.Println("kvmgate", v)
	return nil
}

func runHelp(ctx context.Context, args []string) error {
	if len(args) == 0 {
		usage(os.Stdout)
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		return &exitError{Code: exitUsage, Err: fmt.Errorf("unknown command %q (known: %s)", args[0], strings.Join(sortedNames(), ", "))}
	}
	return c.Run(ctx, []string{"-h"})
}

func sortedNames() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
