package localserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// ErrMissingBinary is returned when a server binary is not installed. Its
// message carries the command that installs it.
var ErrMissingBinary = errors.New("server binary not installed")

// process is a child server process that dies with us (Pdeathsig) and is
// stopped with a chosen signal.
type process struct {
	cmd      *exec.Cmd
	stopSig  syscall.Signal
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
}

func startProcess(cmd *exec.Cmd, stopSig syscall.Signal, logPath string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", logPath, err)
	}
	cmd.Stdout = logf
	cmd.Stderr = logf
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// If we die without stopping it, the kernel stops it for us.
	cmd.SysProcAttr.Pdeathsig = stopSig
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &process{cmd: cmd, stopSig: stopSig, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// stop signals the process and waits up to grace before killing it.
func (p *process) stop(grace time.Duration) error {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Signal(p.stopSig)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitTCP polls until addr accepts a TCP connection, the process exits, or ctx ends.
func waitTCP(ctx context.Context, p *process, addr, logPath string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if p.exited() {
			return fmt.Errorf("server exited before listening on %s; see %s: %s", addr, logPath, tail(logPath))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w; see %s", addr, ctx.Err(), logPath)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return string(b)
}

// lookBinary finds name on PATH or in the given glob patterns.
func lookBinary(name string, globs ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, g := range globs {
		matches, _ := filepath.Glob(g)
		for i := len(matches) - 1; i >= 0; i-- { // newest version sorts last
			if st, err := os.Stat(matches[i]); err == nil && !st.IsDir() {
				return matches[i], nil
			}
		}
	}
	return "", fmt.Errorf("%w: %s", ErrMissingBinary, name)
}
