package localserver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresInstall is the command that installs PostgreSQL on Debian/Ubuntu.
const PostgresInstall = "apt-get update && apt-get install -y postgresql"

// PostgresConfig configures a private PostgreSQL server.
type PostgresConfig struct {
	// Dir is the data folder; initdb runs when it holds no cluster yet.
	Dir string
	// Port to listen on 127.0.0.1; 0 picks a free one.
	Port int
	// NoFsync turns fsync off: for tests only.
	NoFsync bool
}

// Postgres is a running private PostgreSQL server.
type Postgres struct {
	cfg  PostgresConfig
	proc *process
}

// StartPostgres initialises cfg.Dir if needed and starts postgres on it.
func StartPostgres(ctx context.Context, cfg PostgresConfig) (*Postgres, error) {
	bin, err := lookBinary("postgres", "/usr/lib/postgresql/*/bin/postgres")
	if err != nil {
		return nil, fmt.Errorf("%w (install: %s)", err, PostgresInstall)
	}
	binDir := filepath.Dir(bin)
	if resolved, err := filepath.EvalSymlinks(bin); err == nil {
		binDir = filepath.Dir(resolved)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("postgres data dir: %w", err)
	}
	cred, err := postgresCredential(cfg.Dir)
	if err != nil {
		return nil, err
	}
	pgdata := filepath.Join(cfg.Dir, "data")
	if _, err := os.Stat(filepath.Join(pgdata, "PG_VERSION")); os.IsNotExist(err) {
		cmd := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"), "-D", pgdata, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("initdb %s: %w: %s", pgdata, err, out)
		}
	}
	if cfg.Port == 0 {
		if cfg.Port, err = freePort(); err != nil {
			return nil, err
		}
	}
	args := []string{"-D", pgdata, "-p", strconv.Itoa(cfg.Port), "-k", cfg.Dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300"}
	if cfg.NoFsync {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := exec.Command(filepath.Join(binDir, "postgres"), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	logPath := filepath.Join(cfg.Dir, "postgres.log")
	// SIGINT is PostgreSQL's "fast" shutdown.
	proc, err := startProcess(cmd, syscall.SIGINT, logPath)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := waitTCP(wctx, proc, fmt.Sprintf("127.0.0.1:%d", cfg.Port), logPath); err != nil {
		_ = proc.stop(5 * time.Second)
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pg := &Postgres{cfg: cfg, proc: proc}
	// Listening is not accepting: wait until recovery/start-up is over.
	for {
		conn, err := pgx.Connect(wctx, pg.URL("postgres"))
		if err == nil {
			conn.Close(wctx)
			return pg, nil
		}
		if wctx.Err() != nil || proc.exited() {
			_ = proc.stop(5 * time.Second)
			return nil, fmt.Errorf("postgres not accepting connections: %w; see %s", err, logPath)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// postgresCredential returns the credential to run PostgreSQL with: nil for
// a normal user, the postgres user (owning dir) when we are root.
func postgresCredential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the postgres user to own the data folder (install: %s): %w", PostgresInstall, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	}); err != nil {
		return nil, fmt.Errorf("chown %s to postgres: %w", dir, err)
	}
	// The postgres user must be able to reach the folder.
	for p := filepath.Dir(dir); p != "/" && p != "."; p = filepath.Dir(p) {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o001 == 0 {
			_ = os.Chmod(p, st.Mode().Perm()|0o001)
		}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// URL returns a connection URL for database name.
func (p *Postgres) URL(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.cfg.Port, database)
}

// Port is the TCP port the server listens on.
func (p *Postgres) Port() int { return p.cfg.Port }

// Close stops the server (fast shutdown); safe to call twice.
func (p *Postgres) Close() error { return p.proc.stop(15 * time.Second) }
