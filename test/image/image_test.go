// Package image tests what `make image` and `make install` produce: the container image is
// built with buildah, mounted, and its binaries run from inside it.
package image

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// repo is the repository root from this package's directory.
const repo = "../.."

// runMake runs a make target of the repository with variables, failing the test on error.
func runMake(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("make", append([]string{"-C", repo}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestImage builds the image with `make image` into a buildah store of its own, mounts it
// and runs /asterd from it, chrooted and as the image's user: static binaries, non-root,
// nothing in it but the binaries, the CA bundle and the example config, which passes --check.
// The Kubernetes Deployment names this image and its paths.
func TestImage(t *testing.T) {
	if _, err := exec.LookPath("buildah"); err != nil {
		t.Skip("buildah not installed (apt-get install buildah)")
	}
	if os.Getuid() != 0 {
		// Rootless buildah needs subordinate ids, and the chroot below needs root.
		t.Skip("the image test runs as root, as CI does")
	}
	const version = "v0.0.0-imagetest"
	store := t.TempDir()
	flags := "--storage-driver vfs --root " + filepath.Join(store, "root") + " --runroot " + filepath.Join(store, "run")
	image := "localhost/asterd:" + version
	buildah := func(args ...string) string {
		t.Helper()
		var stderr bytes.Buffer
		cmd := exec.Command("buildah", append(strings.Fields(flags), args...)...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("buildah %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	// Built binaries go to a directory of the test's, not to the repository's bin/.
	runMake(t, "image", "VERSION="+version, "BIN="+t.TempDir(), "BUILDAH_FLAGS="+flags)
	t.Cleanup(func() { buildah("rmi", image) })

	var info struct {
		OCIv1 struct {
			Config struct {
				User       string
				Entrypoint []string
			}
		}
	}
	if err := json.Unmarshal([]byte(buildah("inspect", "--type", "image", image)), &info); err != nil {
		t.Fatal(err)
	}
	user := info.OCIv1.Config.User
	if user != "65532:65532" || !slices.Equal(info.OCIv1.Config.Entrypoint, []string{"/asterd"}) {
		t.Fatalf("image user %q, entrypoint %q: want 65532:65532, [/asterd]", user, info.OCIv1.Config.Entrypoint)
	}

	ctr := buildah("from", image)
	t.Cleanup(func() { buildah("rm", ctr) })
	root := buildah("mount", ctr)
	t.Cleanup(func() { buildah("umount", ctr) })

	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, strings.TrimPrefix(path, root))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	want := []string{"/asterctl", "/asterd", "/etc/aster/aster.toml", "/etc/ssl/certs/ca-certificates.crt"}
	if !slices.Equal(files, want) {
		t.Fatalf("image holds %q, want %q", files, want)
	}

	// Chrooted into the image as its user: a binary that needed a libc or root would fail.
	run := func(args ...string) (string, error) {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
		cmd.Dir = "/"
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("/asterd", "--version"); err != nil || !strings.Contains(out, "asterd "+version) {
		t.Fatalf("/asterd --version in the image: %v\n%s", err, out)
	}
	if out, err := run("/asterd", "--check", "--config", "/etc/aster/aster.toml"); err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("/asterd --check on the image's example: %v\n%s", err, out)
	}
	if out, err := run("/asterctl", "--help"); err != nil && !strings.Contains(out, "asterctl") {
		t.Fatalf("/asterctl in the image: %v\n%s", err, out)
	}

	// The Deployment runs this image's entrypoint on a config mounted where the image has one.
	dep, err := os.ReadFile(filepath.Join(repo, "deploy", "kubernetes", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^\s+image: (\S+)$`).FindStringSubmatch(string(dep)); m == nil || !strings.HasPrefix(m[1], "localhost/asterd:") {
		t.Errorf("deployment.yaml image %q is not what make image builds (localhost/asterd:VERSION)", m)
	}
	if m := regexp.MustCompile(`(?m)^\s+command: \["([^"]+)"\]$`).FindStringSubmatch(string(dep)); m == nil || !slices.Contains(files, m[1]) {
		t.Errorf("deployment.yaml command %q is not a binary of the image %q", m, files)
	}
	for _, p := range []string{"--config=/etc/aster/aster.toml", "runAsUser: 65532", "mountPath: /etc/aster\n"} {
		if !strings.Contains(string(dep), p) {
			t.Errorf("deployment.yaml lacks %q", p)
		}
	}
}

// TestMakeInstall installs into a DESTDIR: binaries to /usr/local/bin, the example config to
// /etc/aster/aster.toml, which a second install keeps; the systemd unit runs those paths.
func TestMakeInstall(t *testing.T) {
	dest := t.TempDir()
	vars := []string{"install", "DESTDIR=" + dest, "BIN=" + t.TempDir(), "VERSION=v0.0.0-installtest"}
	runMake(t, vars...)
	asterd := filepath.Join(dest, "usr/local/bin/asterd")
	out, err := exec.Command(asterd, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "v0.0.0-installtest") {
		t.Fatalf("installed asterd --version: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dest, "usr/local/bin/asterctl")); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dest, "etc/aster/aster.toml")
	if out, err := exec.Command(asterd, "--check", "--config", conf).CombinedOutput(); err != nil {
		t.Fatalf("installed config: %v\n%s", err, out)
	}
	// An operator's edited config survives a reinstall.
	if err := os.WriteFile(conf, []byte("# mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runMake(t, vars...)
	if b, _ := os.ReadFile(conf); string(b) != "# mine\n" {
		t.Fatalf("make install replaced an existing config: %q", b)
	}

	unit, err := os.ReadFile(filepath.Join(repo, "deploy", "systemd", "asterd.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=/usr/local/bin/asterd --config /etc/aster/aster.toml", "make install"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("asterd.service lacks %q", want)
		}
	}
}
