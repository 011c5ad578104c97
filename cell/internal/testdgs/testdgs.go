// Package testdgs is a minimal dedicated game server speaking the
// proto/events contract, for the cell's tests: it heartbeats, accepts
// one allocation at a time, optionally ends its match after a while and
// publishes the result, and stops on a shutdown request or SIGTERM. Test
// binaries re-execute themselves as this server (see Child). It stands in
// for the real dgs package until the cell's tests switch to it.
package testdgs

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/proto/events"
)

// EnvVar, when set to "1" in a test binary's environment, makes TestMain
// run Main instead of the tests.
const EnvVar = "CELLGRID_TEST_DGS"

// Child reports whether this process was started as a test DGS.
func Child() bool { return os.Getenv(EnvVar) == "1" }

// Main runs the server with command-line args (without the program name)
// and returns the exit code.
func Main(args []string) int {
	fs := flag.NewFlagSet("testdgs", flag.ContinueOnError)
	cell := fs.String("cell", "", "cell id")
	id := fs.String("id", "", "server id")
	natsURL := fs.String("nats", "", "NATS URL")
	addr := fs.String("addr", "127.0.0.1:0", "game socket address")
	version := fs.String("version", "", "version name")
	interval := fs.Duration("health-interval", time.Second, "heartbeat interval")
	matchFor := fs.Duration("match-duration", 0, "end each match after this long (0: never)")
	exitAfter := fs.Bool("exit-after-match", false, "exit after one match instead of returning to Ready")
	refuse := fs.Bool("refuse", false, "refuse every allocation")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, *cell, *id, *natsURL, *addr, *version, *interval, *matchFor, *exitAfter, *refuse); err != nil {
		fmt.Fprintln(os.Stderr, "testdgs:", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, cell, id, natsURL, addr, version string, interval, matchFor time.Duration, exitAfter, refuse bool) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	defer pc.Close()
	go func() { // echo, so tests can play through the relay
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	nc, err := nats.Connect(natsURL, nats.Name("testdgs "+id))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var mu sync.Mutex
	state, session := events.DGSReady, ""
	var beat func()
	// endMatch publishes the result, then returns to Ready (or exits).
	endMatch := func(a events.Allocation, started time.Time) {
		res := events.MatchResult{SessionID: a.SessionID, Cell: cell, GameMode: a.GameMode, DGSID: id,
			StartedAt: started, EndedAt: time.Now(), WinnerTeam: -1, Reason: "time_limit"}
		for ti, team := range a.Teams {
			for _, p := range team {
				res.Players = append(res.Players, events.PlayerResult{PlayerID: p, Team: ti, Score: int64(10 * ti)})
			}
		}
		b, _ := json.Marshal(res)
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.Publish(pctx, events.MatchResultSubject(cell), b, jetstream.WithMsgID(a.SessionID))
		pcancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "testdgs: publish result:", err)
		}
		if exitAfter {
			cancel()
			return
		}
		mu.Lock()
		state, session = events.DGSReady, ""
		mu.Unlock()
		beat()
	}
	beat = func() {
		mu.Lock()
		h := events.DGSHealth{ID: id, Cell: cell, State: state, GameAddr: pc.LocalAddr().String(), Version: version, SessionID: session, At: time.Now()}
		mu.Unlock()
		b, _ := json.Marshal(h)
		_ = nc.Publish(events.DGSHealthSubject(cell), b)
	}
	_, err = nc.Subscribe(events.DGSAllocateSubject(cell, id), func(m *nats.Msg) {
		var a events.Allocation
		reply := events.AllocationReply{OK: true}
		mu.Lock()
		switch {
		case json.Unmarshal(m.Data, &a) != nil:
			reply = events.AllocationReply{Error: "bad allocation"}
		case refuse || state != events.DGSReady:
			reply = events.AllocationReply{Error: "not ready: " + string(state)}
		default:
			state, session = events.DGSAllocated, a.SessionID
		}
		mu.Unlock()
		// Heartbeat the allocation before answering, and only then start
		// the match clock, so the cell sees allocated → ready in order.
		beat()
		b, _ := json.Marshal(reply)
		_ = m.Respond(b)
		if reply.OK && matchFor > 0 {
			started := time.Now()
			time.AfterFunc(matchFor, func() { endMatch(a, started) })
		}
	})
	if err != nil {
		return err
	}
	_, err = nc.Subscribe(events.DGSShutdownSubject(cell, id), func(*nats.Msg) { cancel() })
	if err != nil {
		return err
	}
	if err := nc.Flush(); err != nil {
		return err
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		beat()
		select {
		case <-ctx.Done():
			mu.Lock()
			state = events.DGSShutdown
			mu.Unlock()
			beat()
			return nc.Flush()
		case <-t.C:
		}
	}
}
