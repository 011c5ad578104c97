package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/client"
	"github.com/cellgrid/cellgrid/client/bots"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

// These tests are the README, typed as a newcomer types it: the real
// binary, `cellgrid dev` as a process of its own (on free ports, with a
// private data folder instead of ./.cellgrid), and `cellgrid bots` with its
// default flags.

// TestNewcomerBotsFinish: `cellgrid bots --players 8` against a default
// `cellgrid dev`, without --cell, exits 0 with every bot finished and four
// matches completed; Ctrl-C then stops every process the stack started.
func TestNewcomerBotsFinish(t *testing.T) {
	bin := buildCellgrid(t)
	dev := startDev(t, bin)

	// The bots' own default --timeout must end them first; this only stops
	// a hung process.
	ctx, cancel := context.WithTimeout(context.Background(), bots.DefaultMatchTimeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "bots", "--global", dev.globalURL, "--players", "8", "--json")
	cmd.Dir = dev.root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("cellgrid bots --players 8: %v after %s\nstdout:\n%s\nstderr (tail):\n%s", err, took.Round(time.Second), stdout.String(), tail(stderr.String(), 2000))
	}
	var sum bots.Summary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("bots --json printed %q: %v", stdout.String(), err)
	}
	if sum.Players != 8 || sum.Finished != 8 || sum.MatchesCompleted != 4 || sum.Failed != 0 || sum.TimeToMatch.N != 8 {
		t.Fatalf("summary after %s: %+v", took.Round(time.Second), sum)
	}
	t.Logf("8 bots finished 4 matches in %s (time to match p50 %s)", took.Round(100*time.Millisecond), sum.TimeToMatch.P50)

	if procs := dev.processes(t); procs.dgs == 0 || procs.redis == 0 || procs.postgres == 0 {
		t.Fatalf("while running, found %+v: the process scan cannot see the stack", procs)
	}
	dev.interrupt(t)
}

// TestDevStartIsQuiet: a normal start of the dev stack, until every server
// is ready and the fleets are warm, then Ctrl-C, logs no line at WARN or
// above and no line with an attribute twice (cell=… cell=…).
func TestDevStartIsQuiet(t *testing.T) {
	bin := buildCellgrid(t)
	dev := startDev(t, bin)
	for _, u := range append([]string{dev.globalURL}, dev.cellURLs...) {
		testenv.Eventually(t, 30*time.Second, func() error { return ready(u) })
	}
	// Two warm DGS per cell (the dev fleet buffer): the fleets are up.
	testenv.Eventually(t, 60*time.Second, func() error {
		if p := dev.processes(t); p.dgs < 2*len(dev.cellURLs) {
			return fmt.Errorf("%d game servers running, want %d", p.dgs, 2*len(dev.cellURLs))
		}
		return nil
	})

	// Meanwhile: every server answers unknown paths and methods with the
	// JSON error envelope.
	t.Run("404 and 405 in the JSON envelope", func(t *testing.T) {
		// A cell answers 401 to anything without a token: log in first.
		c, err := client.New(client.Config{GlobalURL: dev.globalURL})
		if err != nil {
			t.Fatal(err)
		}
		sess, err := c.LoginDevice(context.Background(), "newcomer-404-check")
		if err != nil {
			t.Fatal(err)
		}
		type check struct{ method, url, code string }
		checks := []check{
			{"GET", dev.globalURL + "/no/such/path", "not_found"},
			{"POST", dev.globalURL + "/topology", "method_not_allowed"},
		}
		for _, c := range dev.cellURLs {
			checks = append(checks, check{"GET", c + "/no/such/path", "not_found"}, check{"GET", c + "/matchmaking/join", "method_not_allowed"})
		}
		for _, c := range checks {
			if err := checkEnvelope(c.method, c.url, sess.AccessToken, c.code); err != nil {
				t.Error(err)
			}
		}
	})

	dev.interrupt(t)
	lines := dev.logLines()
	if len(lines) == 0 {
		t.Fatal("the dev stack logged nothing: is --log-format json honoured?")
	}
	running := 0
	for _, line := range lines {
		rec, dup, err := decodeLogLine(line)
		if err != nil {
			t.Errorf("log line is not JSON (%v): %s", err, line)
			continue
		}
		if lvl, _ := rec["level"].(string); lvl == "WARN" || lvl == "ERROR" || strings.HasPrefix(lvl, "WARN+") || strings.HasPrefix(lvl, "ERROR+") {
			t.Errorf("a healthy start logged at %s: %s", lvl, line)
		}
		if dup != "" {
			t.Errorf("attribute %q logged twice: %s", dup, line)
		}
		if rec["msg"] == "cell running" {
			running++
		}
	}
	if running != len(dev.cellURLs) {
		t.Errorf("%d \"cell running\" lines for %d cells: the log scan missed lines", running, len(dev.cellURLs))
	}
}

// checkEnvelope sends method url and expects status 404/405 in the JSON
// error envelope with the given code.
func checkEnvelope(method, url, token, code string) error {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := map[string]int{"not_found": 404, "method_not_allowed": 405}[code]
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if resp.StatusCode != want || resp.Header.Get("Content-Type") != "application/json" ||
		json.Unmarshal(body, &env) != nil || env.Error.Code != code || env.Error.Message == "" {
		return fmt.Errorf("%s %s: %d %q %s; want %d with {\"error\":{\"code\":%q,…}}",
			method, url, resp.StatusCode, resp.Header.Get("Content-Type"), body, want, code)
	}
	return nil
}

// decodeLogLine decodes one JSON log record and names the first top-level
// key that appears twice ("" if none).
func decodeLogLine(line string) (map[string]any, string, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, "", fmt.Errorf("not an object")
	}
	rec := map[string]any{}
	dup := ""
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, "", err
		}
		key, _ := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, "", err
		}
		if _, seen := rec[key]; seen && dup == "" {
			dup = key
		}
		rec[key] = v
	}
	return rec, dup, nil
}

// buildCellgrid builds ./cmd/cellgrid into the test's temp folder (the Go
// build cache makes the second build of a run cheap).
func buildCellgrid(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cellgrid")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/cellgrid/cellgrid/cmd/cellgrid")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/cellgrid: %v\n%s", err, out)
	}
	return bin
}

// devProcess is `cellgrid dev` running as a process of its own.
type devProcess struct {
	cmd       *exec.Cmd
	root      string // its working directory; --data is root/data
	globalURL string
	cellURLs  []string
	done      chan error
	mu        sync.Mutex
	stderr    bytes.Buffer // guarded by mu
	stopped   bool
}

func (d *devProcess) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stderr.Write(p)
}

func (d *devProcess) logLines() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var lines []string
	for _, l := range strings.Split(d.stderr.String(), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// startDev runs `cellgrid dev` on free ports with a private data folder,
// JSON logs, and waits until it prints its URLs.
func startDev(t *testing.T, bin string) *devProcess {
	t.Helper()
	root := t.TempDir()
	d := &devProcess{root: root, done: make(chan error, 1)}
	d.cmd = exec.Command(bin, "dev", "--data", filepath.Join(root, "data"),
		"--global-addr", "127.0.0.1:0", "--cell-base-port", "0",
		"--global-ops-addr", "127.0.0.1:0", "--cell-ops-base-port", "0", "--log-format", "json")
	d.cmd.Dir = root // a stray default ./.cellgrid would land here, not in the clone
	d.cmd.Stderr = d
	out, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.cleanup(t) })
	urls := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) >= 2 && f[0] == "global":
				d.globalURL = f[1]
			case len(f) >= 3 && f[0] == "cell":
				d.cellURLs = append(d.cellURLs, f[2])
			case strings.HasPrefix(sc.Text(), "Ctrl-C") && !sent:
				urls <- nil
				sent = true
			}
		}
		if !sent {
			urls <- errors.New("cellgrid dev ended its output before printing its URLs")
		}
		d.done <- d.cmd.Wait()
	}()
	select {
	case err := <-urls:
		if err != nil {
			t.Fatalf("%v\nlog:\n%s", err, tail(strings.Join(d.logLines(), "\n"), 4000))
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("cellgrid dev printed no URLs in 3 minutes\nlog:\n%s", tail(strings.Join(d.logLines(), "\n"), 4000))
	}
	if d.globalURL == "" || len(d.cellURLs) != 3 {
		t.Fatalf("cellgrid dev printed global %q and cells %v, want one global and 3 cells", d.globalURL, d.cellURLs)
	}
	return d
}

// interrupt sends SIGINT (Ctrl-C), expects exit status 0, and that no
// process the stack started (PostgreSQL, redis-server, DGS) outlives it.
func (d *devProcess) interrupt(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		d.stopped = true
		if err != nil {
			t.Errorf("cellgrid dev after Ctrl-C: %v\nlog:\n%s", err, tail(strings.Join(d.logLines(), "\n"), 4000))
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("cellgrid dev still running 2 minutes after Ctrl-C")
	}
	left := d.processes(t)
	if left.total() > 0 {
		t.Errorf("processes left behind after Ctrl-C: %+v", left)
	}
}

// cleanup kills what a failed test left running (by pid, only this test's).
func (d *devProcess) cleanup(t *testing.T) {
	if !d.stopped {
		_ = d.cmd.Process.Signal(os.Interrupt)
		select {
		case <-d.done:
		case <-time.After(time.Minute):
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	}
	for _, pid := range d.processes(t).pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// stackProcs are the processes of one dev stack.
type stackProcs struct {
	postgres, redis, dgs, other int
	pids                        []int
	lines                       []string
}

func (p stackProcs) total() int { return len(p.pids) }

// processes finds the stack's processes: those whose command line names
// the test's folder (DGS: the binary lives there; PostgreSQL: -D) or whose
// working directory is inside it (redis-server rewrites its command line
// but runs in its --dir; PostgreSQL backends run in their data folder).
func (d *devProcess) processes(t *testing.T) stackProcs {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var p stackProcs
	self := os.Getpid()
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == self || pid == d.cmd.Process.Pid {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue // gone, or a kernel thread
		}
		cmdline := strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " "))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if !strings.Contains(cmdline, d.root) && !strings.HasPrefix(cwd, d.root) {
			continue
		}
		switch {
		case strings.Contains(cmdline, " dgs "):
			p.dgs++
		case strings.Contains(cmdline, "redis-server"):
			p.redis++
		case strings.Contains(cmdline, "postgres"):
			p.postgres++
		default:
			p.other++
		}
		p.pids = append(p.pids, pid)
		p.lines = append(p.lines, fmt.Sprintf("%d %s (cwd %s)", pid, cmdline, cwd))
	}
	return p
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
