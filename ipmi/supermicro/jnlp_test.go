package supermicro

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kvmgate/ipmi/bmcsim"
)

func TestParseJNLP(t *testing.T) {
	replace := func(b []byte, old, new string) []byte { return []byte(strings.Replace(string(b), old, new, 1)) }
	ten := bmcsim.JNLP(10, "10.0.0.5", "Yx3kEWm4", "BnQnNEYpEa", 5900)
	tt := bmcsim.JNLP(22, "10.0.0.6", "tok1", "tok2", 63630)
	for _, tc := range []struct {
		name    string
		data    []byte
		want    JNLPLaunch
		wantErr string
	}{
		{name: "x9 10 args", data: ten, want: JNLPLaunch{Layout: 10, Host: "10.0.0.5", User: "Yx3kEWm4", Password: "BnQnNEYpEa", KVMPort: 5900, VMPort: 623, Jar: "iKVM__V1.69.38.0x0.jar"}},
		{name: "x11 22 args", data: tt, want: JNLPLaunch{Layout: 22, Host: "10.0.0.6", User: "tok1", Password: "tok2", KVMPort: 63630, VMPort: 623, Jar: "iKVM__V1.69.38.0x0.jar"}},
		{name: "empty", data: nil, wantErr: "empty"},
		{name: "not jnlp", data: []byte("<html><body>Session expired</body>"), wantErr: "XML"},
		{name: "other main class", data: replace(ten, "tw.com.aten.ikvm.KVMMain", "com.ami.kvm.JViewer"), wantErr: "main class"},
		{name: "11 args", data: replace(ten, "<argument>3520</argument>", "<argument>3520</argument><argument>x</argument>"), wantErr: "11 arguments"},
		{name: "bad port", data: replace(ten, "<argument>5900</argument>", "<argument>59x0</argument>"), wantErr: "KVM port"},
		{name: "port zero", data: replace(ten, "<argument>5900</argument>", "<argument>0</argument>"), wantErr: "KVM port"},
		{name: "null password", data: replace(ten, "BnQnNEYpEa", "null"), wantErr: "password"},
		{name: "long user", data: replace(ten, "Yx3kEWm4", strings.Repeat("u", 25)), wantErr: "user"},
		{name: "bad host", data: replace(ten, "<argument>10.0.0.5</argument>", "<argument>http://evil/</argument>"), wantErr: "host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseJNLP(tc.data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *got != tc.want {
				t.Errorf("got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func TestLoginUsesBase64(t *testing.T) {
	if LoginUsesBase64([]byte(`<script>pwd.value = pwd.value;</script>`)) {
		t.Error("plain page detected as base64")
	}
	if !LoginUsesBase64([]byte(`<script>name.value = btoa(name.value)</script>`)) {
		t.Error("btoa page not detected")
	}
}

func TestParseIKVMPage(t *testing.T) {
	for page, want := range map[string]string{
		`<script>var ikvm_token = "abc123XYZ";</script>`: "abc123XYZ",
		`{"token":"t0k3n-42"}`:                           "t0k3n-42",
		`<html>no launch here</html>`:                    "",
	} {
		if got := ParseIKVMPage([]byte(page)); got != want {
			t.Errorf("ParseIKVMPage(%q) = %q, want %q", page, got, want)
		}
	}
}

func FuzzParseJNLP(f *testing.F) {
	f.Add(bmcsim.JNLP(10, "10.0.0.5", "u", "p", 5900))
	f.Add(bmcsim.JNLP(22, "10.0.0.5", "u", "p", 5900))
	files, _ := filepath.Glob("testdata/*.jnlp")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseJNLP(data)
		if err != nil {
			return
		}
		if l.Layout != 10 && l.Layout != 22 || l.KVMPort < 1 || l.KVMPort > 65535 || len(l.User) > 24 || len(l.Password) > 24 || l.Host == "" {
			t.Fatalf("accepted an invalid launch %+v", l)
		}
	})
}
