package server_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"kvmgate/server"
)

func do(t *testing.T, method, url, key, body string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestAPI(t *testing.T) {
	e := newEnv(t, server.Options{APIKey: "s3cret"}, 320, 200)
	api := e.ts.URL + "/api/sessions"
	cases := []struct {
		name, method, key, body string
		code                    int
	}{
		{"no key", "GET", "", "", http.StatusUnauthorized},
		{"wrong key", "GET", "guess", "", http.StatusUnauthorized},
		{"bad json", "POST", "s3cret", "{", http.StatusBadRequest},
		{"unknown field", "POST", "s3cret", `{"target":"a:1","x":1}`, http.StatusBadRequest},
		{"password in target", "POST", "s3cret", `{"target":"vnc://u:pw@a:1"}`, http.StatusBadRequest},
		{"list empty", "GET", "s3cret", "", http.StatusOK},
		{"delete unknown", "DELETE", "s3cret", "", http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := api
			if tc.method == "DELETE" {
				u += "/nope"
			}
			resp := do(t, tc.method, u, tc.key, tc.body)
			b := body(t, resp)
			if resp.StatusCode != tc.code {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, u, resp.StatusCode, b, tc.code)
			}
			if strings.Contains(b, "pw") {
				t.Fatalf("response echoes a password: %s", b)
			}
		})
	}

	resp := do(t, "POST", api, "s3cret", `{"target":"fake:1"}`)
	b := body(t, resp)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	var cr server.CreateResponse
	if err := json.Unmarshal([]byte(b), &cr); err != nil {
		t.Fatal(err)
	}
	if cr.ID == "" || cr.Ticket == "" || !strings.HasPrefix(cr.URL, e.ts.URL+"/?ticket=") || time.Until(cr.Expires) <= 0 {
		t.Fatalf("create response %+v", cr)
	}
	// The ticket opens the console.
	c := e.connect("ticket=" + url.QueryEscape(cr.Ticket))
	c.converge(e.snapshot())

	resp = do(t, "GET", api, "s3cret", "")
	var list []map[string]any
	if err := json.Unmarshal([]byte(body(t, resp)), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0]["id"] != cr.ID || list[0]["viewers"] != 1.0 || list[0]["width"] != 320.0 || list[0]["target"] != "vnc://fake:1" {
		t.Fatalf("list %v", list)
	}

	resp = do(t, "DELETE", api+"/"+cr.ID, "s3cret", "")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d %s", resp.StatusCode, body(t, resp))
	}
	resp.Body.Close()
	if ce := c.waitClose(); ce.Code != 1000 {
		t.Fatalf("viewer close %v", ce)
	}
	// The ended session's ticket no longer opens a console; a new ticket
	// from the API does.
	conn, resp, err := e.dial("ticket="+url.QueryEscape(cr.Ticket), nil)
	if err == nil {
		conn.Close()
		t.Fatal("the ticket of a deleted session still opens the console")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden || !strings.Contains(body(t, resp), "revoked") {
		t.Fatalf("old ticket: response %v, want 403 revoked", resp)
	}
	resp = do(t, "POST", api, "s3cret", `{"target":"fake:1"}`)
	if err := json.Unmarshal([]byte(body(t, resp)), &cr); err != nil {
		t.Fatal(err)
	}
	e.connect("ticket=" + url.QueryEscape(cr.Ticket)).converge(e.snapshot())
}

func TestAPIDisabledWithoutKey(t *testing.T) {
	e := newEnv(t, server.Options{Target: "vnc://fake:1"}, 320, 200)
	resp := do(t, "GET", e.ts.URL+"/api/sessions", "anything", "")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d", resp.StatusCode)
	}
	resp.Body.Close()
}

func TestPagesAndStatic(t *testing.T) {
	e := newEnv(t, server.Options{Target: "vnc://fake:1"}, 320, 200)
	resp := do(t, "GET", e.ts.URL+"/", "", "")
	page := body(t, resp)
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("index Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	m := regexp.MustCompile(`<meta name="kvmgate-ticket" content="([^"]+)">`).FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, "<head>\n<meta") {
		t.Fatalf("no ticket in page:\n%s", page)
	}
	if target, err := e.srv.Tickets().Verify(m[1]); err != nil || target != "vnc://fake:1" {
		t.Fatalf("page ticket: %q %v", target, err)
	}
	// A page with an empty ticket tag gets it filled in, not a second one.
	e2 := newEnv(t, server.Options{Target: "vnc://fake:1", Client: fstest.MapFS{
		"index.html": {Data: []byte(`<html><head><meta name="kvmgate-ticket" content=""></head></html>`)},
	}}, 320, 200)
	p2 := body(t, do(t, "GET", e2.ts.URL+"/", "", ""))
	if strings.Count(p2, "kvmgate-ticket") != 1 || strings.Contains(p2, `content=""`) {
		t.Fatalf("ticket tag not filled in: %s", p2)
	}
	// Pages for token or ticket URLs carry no ticket.
	if p := body(t, do(t, "GET", e.ts.URL+"/?token=x", "", "")); strings.Contains(p, "kvmgate-ticket") {
		t.Fatal("token page got a ticket")
	}

	for _, path := range []string{"/client/app.js", "/app.js"} {
		resp = do(t, "GET", e.ts.URL+path, "", "", "Accept-Encoding", "gzip")
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, resp.Header)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(zr)
		if !bytes.Equal(plain, testClient["app.js"].Data) {
			t.Fatal("gzip body differs from the file")
		}
		etag := resp.Header.Get("ETag")
		resp = do(t, "GET", e.ts.URL+path, "", "", "Accept-Encoding", "gzip", "If-None-Match", etag)
		resp.Body.Close()
		if etag == "" || resp.StatusCode != http.StatusNotModified {
			t.Fatalf("revalidation: etag %q status %d", etag, resp.StatusCode)
		}
	}
	resp = do(t, "GET", e.ts.URL+"/client/app.js", "", "")
	if b := body(t, resp); resp.Header.Get("Content-Encoding") != "" || b != string(testClient["app.js"].Data) {
		t.Fatal("identity response wrong")
	}
	for _, path := range []string{"/client/missing.js", "/client/../go.mod", "/nope"} {
		resp = do(t, "GET", e.ts.URL+path, "", "")
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
	resp = do(t, "GET", e.ts.URL+"/healthz", "", "")
	if b := body(t, resp); resp.StatusCode != 200 || b != "ok\n" {
		t.Fatalf("healthz %d %q", resp.StatusCode, b)
	}
	c := e.connect("")
	c.converge(e.snapshot())
	resp = do(t, "GET", e.ts.URL+"/metrics", "", "")
	metrics := body(t, resp)
	for _, want := range []string{"kvmgate_sessions 1\n", "kvmgate_viewers 1\n", "# TYPE kvmgate_bytes_sent_total counter\n", "kvmgate_frames_sent_total "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
}

func TestParseTokens(t *testing.T) {
	cases := []struct {
		name, in string
		want     map[string]string
		err      bool
	}{
		{"websockify", "# comment\n\nvm1: 10.0.0.1:5900\n  vm2 : host.example:5901  \n", map[string]string{"vm1": "vnc://10.0.0.1:5900", "vm2": "vnc://host.example:5901"}, false},
		{"url target", "a: vnc://h:1\n", map[string]string{"a": "vnc://h:1"}, false},
		{"no colon", "garbage\n", nil, true},
		{"empty target", "a:\n", nil, true},
		{"password in url", "a: vnc://u:p@h:1\n", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := server.ParseTokens(strings.NewReader(tc.in))
			if (err != nil) != tc.err {
				t.Fatalf("err %v", err)
			}
			if tc.err {
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("got %v want %v", got, tc.want)
				}
			}
		})
	}
}

func TestTokenReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	writeFile(t, file, "a: h:1\n")
	ts, err := server.NewTokenSource(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := ts.Lookup("a"); !ok || got != "vnc://h:1" {
		t.Fatalf("a = %q %v", got, ok)
	}
	writeFile(t, file, "a: h:2\nb: h:3\n")
	ts.Reload()
	if got, _ := ts.Lookup("a"); got != "vnc://h:2" {
		t.Fatalf("after reload a = %q", got)
	}
	// A broken file keeps the previous tokens.
	writeFile(t, file, "broken line with no separator\n")
	ts.Reload()
	if got, ok := ts.Lookup("b"); !ok || got != "vnc://h:3" {
		t.Fatalf("after bad reload b = %q %v", got, ok)
	}

	// A directory: every file counts; new files are picked up.
	tdir := filepath.Join(dir, "d")
	if err := os.Mkdir(tdir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(tdir, "one"), "x: h:10\n")
	ds, err := server.NewTokenSource(tdir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ds.Lookup("y"); ok {
		t.Fatal("y known too early")
	}
	writeFile(t, filepath.Join(tdir, "two"), "y: h:11\n")
	writeFile(t, filepath.Join(tdir, ".hidden"), "z: h:12\n")
	ds.Reload()
	if got, ok := ds.Lookup("y"); !ok || got != "vnc://h:11" {
		t.Fatalf("y = %q %v", got, ok)
	}
	if _, ok := ds.Lookup("z"); ok {
		t.Fatal("hidden file read")
	}
	if ds.Len() != 2 {
		t.Fatalf("len %d", ds.Len())
	}
	if _, err := server.NewTokenSource(filepath.Join(dir, "missing"), nil); err == nil {
		t.Fatal("missing token file accepted")
	}
}

func TestOptionsValidation(t *testing.T) {
	cases := []server.Options{
		{Target: "vnc://u:pw@h:1"},
		{AllowedOrigins: []string{"evil.example"}},
		{TokenPath: "/nonexistent/tokens"},
	}
	for _, o := range cases {
		if _, err := server.New(o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}
