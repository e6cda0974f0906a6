package bearer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, path, want, errHas string
	}{
		{"plain", write("plain", "s3cret"), "s3cret", ""},
		{"trailing newline", write("nl", "s3cret\n"), "s3cret", ""},
		{"trailing CRLF", write("crlf", "s3cret\r\n"), "s3cret", ""},
		{"inner spaces kept", write("sp", " a b \n"), " a b ", ""},
		{"missing", filepath.Join(dir, "nope"), "", "no such file"},
		{"directory", dir, "", "token file"},
		{"empty", write("empty", ""), "", "empty"},
		{"only newline", write("onlynl", "\n"), "", "empty"},
		{"two lines", write("two", "s3cret\nmore\n"), "", "one line"},
		{"not ASCII", write("utf8", "s3cret\u00e9\n"), "", "printable ASCII"},
		{"too large", write("big", strings.Repeat("x", MaxFileSize+1)), "", "larger than"},
		{"largest", write("max", strings.Repeat("x", MaxFileSize)), strings.Repeat("x", MaxFileSize), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadFile(tc.path)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("ReadFile = %q, %v; want an error with %q", got, err, tc.errHas)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error shows the file's content: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ReadFile = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestResolvePrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		if k == Env {
			return "from-env"
		}
		return ""
	}
	noEnv := func(string) string { return "" }
	str := func(s string) *string { return &s }
	cases := []struct {
		name       string
		flag, file *string
		getenv     func(string) string
		want       string
		err        bool
	}{
		{"flag beats env", str("from-flag"), nil, env, "from-flag", false},
		{"empty flag beats env", str(""), nil, env, "", false},
		{"file beats env", nil, str(file), env, "from-file", false},
		{"env alone", nil, nil, env, "from-env", false},
		{"nothing", nil, nil, noEnv, "", false},
		{"both flags", str("from-flag"), str(file), env, "", true},
		{"unreadable file is an error, not the env", nil, str(file + ".missing"), env, "", true},
		{"empty file name is an error", nil, str(""), env, "", true},
		{"flag with a newline", str("a\nb"), nil, env, "", true},
		{"env with a newline", nil, nil, func(string) string { return "a\nb" }, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(tc.flag, tc.file, tc.getenv)
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("Resolve = %q, %v; want %q (error %v)", got, err, tc.want, tc.err)
			}
		})
	}
}
