package localserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Versions of the agents the tests run: the last MPL-2.0 releases. Newer
// ones are not open source and must never be used here.
const (
	NomadVersion  = "1.6.3"
	ConsulVersion = "1.16.3"
)

// HashistackHint is the command that builds the agents (make test runs it).
const HashistackHint = "build/hashistack.sh (run from the repository root; `make test` runs it)"

// ToolsDir is where build/hashistack.sh puts the agents:
// $CELLGRID_TOOLS, default ~/.cache/cellgrid/tools.
func ToolsDir() string {
	if d := os.Getenv("CELLGRID_TOOLS"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "cellgrid-tools")
	}
	return filepath.Join(home, ".cache", "cellgrid", "tools")
}

// agentBinary returns $env or ToolsDir()/name-version, or an error naming
// the command that builds it.
func agentBinary(env, name, version string) (string, error) {
	p := os.Getenv(env)
	if p == "" {
		p = filepath.Join(ToolsDir(), name+"-"+version)
	}
	st, err := os.Stat(p)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s v%s not found at %s (set %s or build it: %s)", name, version, p, env, HashistackHint)
	}
	return p, nil
}

// NomadBinary is the path of the Nomad v1.6.3 binary ($CELLGRID_NOMAD or
// the tools cache).
func NomadBinary() (string, error) { return agentBinary("CELLGRID_NOMAD", "nomad", NomadVersion) }

// ConsulBinary is the path of the Consul v1.16.3 binary ($CELLGRID_CONSUL
// or the tools cache).
func ConsulBinary() (string, error) {
	return agentBinary("CELLGRID_CONSUL", "consul", ConsulVersion)
}

// FreePorts returns n distinct loopback ports free for both TCP and UDP at
// the time of the call (Serf listens on both). They are drawn below the
// kernel's ephemeral range (32768+), so an outgoing connection of another
// process cannot take one between this check and the agent's bind; another
// picker still can, which is why the agents retry on "address already in
// use" (startWithRetry).
func FreePorts(n int) ([]int, error) {
	var ports []int
	var held []func()
	defer func() {
		for _, c := range held {
			c()
		}
	}()
	for tries := 0; len(ports) < n && tries < 100*n; tries++ {
		p := 15000 + rand.IntN(17000)
		if slices.Contains(ports, p) {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			l.Close()
			continue
		}
		held = append(held, func() { l.Close(); u.Close() })
		ports = append(ports, p)
	}
	if len(ports) < n {
		return nil, errors.New("free port: none found")
	}
	return ports, nil
}

// agent is one running agent process.
type agent struct {
	name    string
	cmd     *exec.Cmd
	dir     string
	tmpDir  bool // dir is ours to remove after Stop
	logPath string
	done    chan struct{}
	stop    sync.Once
}

// startAgent runs bin args with its output in dir/agent.log. The agent gets
// SIGINT if the test binary dies (a killed Nomad dev agent leaves mounts).
// agentDir returns dir, created if missing, or a fresh temporary folder
// for the named agent when dir is "" (tmp: the agent's Stop removes it).
func agentDir(name, dir string) (string, bool, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "cellgrid-"+name+"-")
		return d, true, err
	}
	return dir, false, os.MkdirAll(dir, 0o700)
}

// launchAgent writes hcl to dir/agent.hcl and starts `bin agent -dev
// <configFlag> dir/agent.hcl`. On failure a temporary dir is removed.
func launchAgent(name, bin, dir string, tmp bool, configFlag, hcl string) (*agent, error) {
	conf := filepath.Join(dir, "agent.hcl")
	err := os.WriteFile(conf, []byte(hcl), 0o600)
	var a *agent
	if err == nil {
		a, err = startAgent(name, bin, dir, "agent", "-dev", configFlag, conf)
	}
	if err != nil {
		if tmp {
			_ = os.RemoveAll(dir)
		}
		return nil, err
	}
	a.tmpDir = tmp
	return a, nil
}

func startAgent(name, bin, dir string, args ...string) (*agent, error) {
	logPath := filepath.Join(dir, "agent.log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGINT}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	a := &agent{name: name, cmd: cmd, dir: dir, logPath: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		lf.Close()
		close(a.done)
	}()
	return a, nil
}

// exited reports whether the process has ended.
func (a *agent) exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGINT and waits up to grace for a clean exit (a Nomad dev
// agent stops its allocations and unmounts their secrets first), then
// SIGKILLs the process group. Safe twice.
func (a *agent) Stop(grace time.Duration) {
	a.stop.Do(func() {
		_ = a.cmd.Process.Signal(os.Interrupt)
		select {
		case <-a.done:
		case <-time.After(grace):
			_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
			<-a.done
		}
	})
}

// logTail is the end of the agent's log, for error messages.
func (a *agent) logTail() string {
	b, _ := os.ReadFile(a.logPath)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(bytes.TrimSpace(b))
}

// waitReady polls ready until it succeeds, the process exits or ctx ends.
func (a *agent) waitReady(ctx context.Context, ready func(context.Context) error) error {
	var err error
	for {
		if err = ready(ctx); err == nil {
			return nil
		}
		if a.exited() {
			return fmt.Errorf("%s exited before ready: %v\n%s", a.name, err, a.logTail())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %v\n%s", a.name, err, a.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startWithRetry runs start up to three times while the agent dies because
// one of its ports was taken between FreePorts and its bind.
func startWithRetry[T any](start func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range 3 {
		v, err = start()
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			return v, err
		}
	}
	return v, err
}
