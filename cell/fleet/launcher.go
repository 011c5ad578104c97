package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Version is one build of the game server: what to run and with which
// arguments. The fleet's current Version is the one new servers run.
type Version struct {
	// Name is reported back by the DGS in its heartbeats (DGSHealth.Version).
	Name    string   `json:"name" yaml:"name"`
	Command string   `json:"command" yaml:"command"`
	Args    []string `json:"args" yaml:"args"`
}

// LaunchSpec is what a Launcher needs to start one DGS.
type LaunchSpec struct {
	ID      string
	Cell    string
	NATSURL string
	Version Version
	// Creds is the server's own NATS credential (.creds text), minted at
	// launch; empty when the cell runs without NATS authentication. A
	// launcher must hand it over without leaving it readable to others.
	Creds []byte
}

// CredsEnv is the environment variable a launched DGS finds its NATS
// credential in (the .creds text, or a path to it).
const CredsEnv = "CELLGRID_NATS_CREDS"

// Handle is a started DGS as its Launcher knows it.
type Handle interface {
	// Exited is closed when the server process ended, or nil when the
	// launcher cannot tell (the fleet then relies on heartbeats alone).
	Exited() <-chan struct{}
}

// Launcher starts and stops DGS processes. Start must return quickly (the
// DGS announces itself on NATS once it is up); Stop asks the server to end,
// forces it after a grace period and returns once it is gone or ctx ends.
type Launcher interface {
	Start(ctx context.Context, spec LaunchSpec) (Handle, error)
	Stop(ctx context.Context, h Handle) error
}

// LocalLauncher runs each DGS as a child process of the cell:
//
//	<Command> <Args…> --cell <cell> --id <dgs id> --nats <url> --addr <GameHost>:0 --version <name>
//
// with its NATS credential in the environment (CredsEnv): the child's
// environment is readable only by its own user, and nothing is written to
// disk.
// Children die with the cell (Pdeathsig) and are reaped by the launcher.
type LocalLauncher struct {
	// GameHost is the host the DGS binds its game socket on. Default 127.0.0.1.
	GameHost string
	// Env is added to the cell's environment for every child.
	Env []string
	// Output receives the children's stdout and stderr; nil discards them.
	Output io.Writer
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL. Default 5s.
	StopGrace time.Duration
}

type localHandle struct {
	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
}

func (h *localHandle) Exited() <-chan struct{} { return h.done }

// PID returns the process id (tests kill it to simulate a crash).
func (h *localHandle) PID() int { return h.cmd.Process.Pid }

// PIDOf returns the process id behind a handle of a LocalLauncher, or 0.
func PIDOf(h Handle) int {
	if lh, ok := h.(*localHandle); ok {
		return lh.PID()
	}
	return 0
}

// Args returns the command line Start runs for spec (without the command).
func (l *LocalLauncher) Args(spec LaunchSpec) []string {
	host := l.GameHost
	if host == "" {
		host = "127.0.0.1"
	}
	args := append([]string(nil), spec.Version.Args...)
	return append(args, "--cell", spec.Cell, "--id", spec.ID, "--nats", spec.NATSURL,
		"--addr", host+":0", "--version", spec.Version.Name)
}

// Start implements Launcher.
func (l *LocalLauncher) Start(_ context.Context, spec LaunchSpec) (Handle, error) {
	if spec.Version.Command == "" {
		return nil, errors.New("local launcher: empty DGS command")
	}
	cmd := exec.Command(spec.Version.Command, l.Args(spec)...)
	cmd.Env = append(childEnviron(), l.Env...)
	if len(spec.Creds) > 0 {
		cmd.Env = append(cmd.Env, CredsEnv+"="+string(spec.Creds))
	}
	out := l.Output
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("launch dgs %s: %w", spec.ID, err)
	}
	h := &localHandle{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // reap
		close(h.done)
	}()
	return h, nil
}

// Stop implements Launcher: SIGTERM to the process group, SIGKILL after
// StopGrace or when ctx ends, then waits for the process to be reaped.
func (l *LocalLauncher) Stop(ctx context.Context, h Handle) error {
	lh, ok := h.(*localHandle)
	if !ok {
		return fmt.Errorf("local launcher: foreign handle %T", h)
	}
	grace := l.StopGrace
	if grace <= 0 {
		grace = 5 * time.Second
	}
	select {
	case <-lh.done:
		return nil
	default:
	}
	pgid := lh.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-lh.done:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-lh.done
	return nil
}

// secretEnv are the cell's own secrets, never inherited by a DGS: a game
// server parses untrusted input and must hold only its own credential.
var secretEnv = []string{CredsEnv, "CELLGRID_DGS_SIGNER", "CELLGRID_CONNECT_KEY", "CELLGRID_ENCRYPTION_KEY", "CELLGRID_DB"}

// childEnviron is this process's environment without secretEnv.
func childEnviron() []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, k := range secretEnv {
			if strings.HasPrefix(kv, k+"=") {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}
