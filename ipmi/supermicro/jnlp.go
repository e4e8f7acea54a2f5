package supermicro

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// MainClass is the main class of Supermicro's Java iKVM viewer.
const MainClass = "tw.com.aten.ikvm.KVMMain"

// Launch is what a Supermicro JNLP tells the Java viewer.
type JNLPLaunch struct {
	// Layout is the number of arguments (10 on X9 firmware, 22 on X10/X11).
	Layout int
	// Host is the KVM server's address as the BMC names it.
	Host string
	// User and Password are the per-launch KVM credentials (random tokens
	// on most firmware). They are secrets.
	User, Password string
	// KVMPort is the KVM server's TCP port.
	KVMPort int
	// VMPort is the virtual media port.
	VMPort int
	// Jar names the viewer's jar (its version tells the firmware's age).
	Jar string
}

// jnlpDoc is the part of a JNLP file the parser reads.
type jnlpDoc struct {
	XMLName   xml.Name `xml:"jnlp"`
	Resources []struct {
		Jars []struct {
			Href string `xml:"href,attr"`
		} `xml:"jar"`
	} `xml:"resources"`
	App struct {
		MainClass string   `xml:"main-class,attr"`
		Args      []string `xml:"argument"`
	} `xml:"application-desc"`
}

// maxJNLP bounds the JNLP size the parser accepts.
const maxJNLP = 1 << 20

// The argument layouts. Both start host, user, password, a placeholder
// ("null"), KVM port and virtual-media port; the 22-argument layout of
// X10/X11 firmware adds flags, the language and the board name after.
const (
	argHost, argUser, argPassword, argKVMPort, argVMPort = 0, 1, 2, 4, 5
)

// ParseJNLP parses a Supermicro iKVM JNLP file. It checks the main class,
// the number of arguments (10 or 22) and every field it uses instead of
// trusting positions blindly, and returns an error naming what is wrong.
func ParseJNLP(data []byte) (*JNLPLaunch, error) {
	if len(data) > maxJNLP {
		return nil, fmt.Errorf("supermicro: JNLP of %d bytes is too large", len(data))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("supermicro: empty JNLP")
	}
	var doc jnlpDoc
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = false
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("supermicro: JNLP is not valid XML: %w", err)
	}
	if mc := strings.TrimSpace(doc.App.MainClass); mc != MainClass {
		return nil, fmt.Errorf("supermicro: JNLP main class %q, want %s (not an ATEN iKVM launch)", mc, MainClass)
	}
	args := make([]string, len(doc.App.Args))
	for i, a := range doc.App.Args {
		args[i] = strings.TrimSpace(a)
	}
	l := &JNLPLaunch{Layout: len(args)}
	switch len(args) {
	case 10, 22:
	default:
		return nil, fmt.Errorf("supermicro: JNLP has %d arguments; known layouts have 10 or 22", len(args))
	}
	for _, r := range doc.Resources {
		for _, j := range r.Jars {
			if l.Jar == "" && j.Href != "" {
				l.Jar = j.Href
			}
		}
	}
	l.Host = args[argHost]
	if l.Host == "" || strings.ContainsAny(l.Host, "/ \t@?#") {
		return nil, fmt.Errorf("supermicro: JNLP host argument %q is not a host", l.Host)
	}
	if h, _, err := net.SplitHostPort(l.Host); err == nil {
		l.Host = h
	}
	l.User, l.Password = args[argUser], args[argPassword]
	for _, f := range []struct{ name, v string }{{"user", l.User}, {"password", l.Password}} {
		if f.v == "" || f.v == "null" {
			return nil, fmt.Errorf("supermicro: JNLP %s argument is empty", f.name)
		}
		if len(f.v) > 24 {
			return nil, fmt.Errorf("supermicro: JNLP %s argument is %d bytes, longer than the protocol's 24", f.name, len(f.v))
		}
	}
	var err error
	if l.KVMPort, err = port(args[argKVMPort]); err != nil {
		return nil, fmt.Errorf("supermicro: JNLP KVM port argument: %w", err)
	}
	if l.VMPort, err = port(args[argVMPort]); err != nil {
		return nil, fmt.Errorf("supermicro: JNLP virtual media port argument: %w", err)
	}
	return l, nil
}

func port(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	return n, nil
}
