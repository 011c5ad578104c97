package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/cellgrid/cellgrid/client/bots"
)

// botsRun is what `cellgrid bots` resolved from its flags.
type botsRun struct {
	Cfg         bots.Config
	Quiet, JSON bool
}

func botsCmd(rf *rootFlags, st starters) *cobra.Command {
	var cfg bots.Config
	var quiet, asJSON bool
	cmd := &cobra.Command{
		Use:   "bots",
		Short: "Run a swarm of simulated players against a cellgrid deployment",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := rf.logger(); err != nil {
				return err
			}
			if cfg.Players <= 0 {
				return fmt.Errorf("--players %d: want at least 1", cfg.Players)
			}
			return st.bots(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), botsRun{Cfg: cfg, Quiet: quiet, JSON: asJSON})
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.GlobalURL, "global", "http://127.0.0.1:8080", "global layer URL (the dev stack's by default)")
	f.IntVar(&cfg.Players, "players", 8, "number of simulated players")
	f.StringVar(&cfg.Mode, "mode", "duel", "game mode to queue for")
	f.StringVar(&cfg.Cell, "cell", "", "pin every bot to this cell id (default: the best beacon latency)")
	f.IntVar(&cfg.Cheaters, "cheaters", 0, "how many bots send impossible moves")
	f.DurationVar(&cfg.MatchTimeout, "timeout", bots.DefaultMatchTimeout, "limit for one bot's whole loop: queueing plus a whole match")
	f.BoolVar(&quiet, "quiet", false, "no progress bars")
	f.BoolVar(&asJSON, "json", false, "print the summary as JSON (durations in nanoseconds)")
	return cmd
}

// startBots runs the swarm with progress bars (unless quiet) and prints
// its summary.
func startBots(ctx context.Context, out, errOut io.Writer, r botsRun) error {
	ctr := &bots.Counters{}
	stopBars := func() {}
	if !r.Quiet {
		stopBars = showProgress(ctx, errOut, ctr, int64(r.Cfg.Players))
	}
	start := time.Now()
	sum, err := bots.Run(ctx, r.Cfg, ctr)
	stopBars()
	if err != nil {
		return err
	}
	took := time.Since(start)
	if r.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(jsonSummary{Summary: sum, Seconds: took.Seconds()}); err != nil {
			return err
		}
	} else {
		printSummary(out, sum, took)
	}
	if sum.Failed > 0 {
		return fmt.Errorf("%d of %d bots failed", sum.Failed, sum.Players)
	}
	return nil
}

// showProgress draws one bar per stage (logged in / queued / playing /
// finished) until the returned stop function is called.
func showProgress(ctx context.Context, w io.Writer, ctr *bots.Counters, total int64) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	p := mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithRefreshRate(150*time.Millisecond), mpb.WithWidth(40))
	type stage struct {
		name string
		get  func() int64
	}
	stages := []stage{
		{"logged in", ctr.LoggedIn.Load},
		{"queued", ctr.Queued.Load},
		{"playing", ctr.Playing.Load},
		{"finished", ctr.Finished.Load},
		{"errors", ctr.Errors.Load},
	}
	bars := make([]*mpb.Bar, len(stages))
	for i, s := range stages {
		bars[i] = p.AddBar(total,
			mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-10s", s.name)), decor.CountersNoUnit("%4d / %4d")),
			mpb.AppendDecorators(decor.Elapsed(decor.ET_STYLE_MMSS)),
		)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			for i, s := range stages {
				bars[i].SetCurrent(s.get())
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
		for _, b := range bars {
			b.Abort(false)
		}
		p.Wait()
	}
}

// jsonSummary is what --json prints.
type jsonSummary struct {
	bots.Summary
	Seconds float64 `json:"seconds"`
}

func printSummary(w io.Writer, s bots.Summary, took time.Duration) {
	fmt.Fprintf(w, "bots: %d players, %d finished, %d matches completed, %d failed in %s\n",
		s.Players, s.Finished, s.MatchesCompleted, s.Failed, took.Round(100*time.Millisecond))
	fmt.Fprintf(w, "time to match   p50 %-10s p99 %-10s (n=%d)\n", s.TimeToMatch.P50.Round(time.Microsecond), s.TimeToMatch.P99.Round(time.Microsecond), s.TimeToMatch.N)
	fmt.Fprintf(w, "relay RTT       p50 %-10s p99 %-10s (n=%d)\n", s.RelayRTT.P50.Round(time.Microsecond), s.RelayRTT.P99.Round(time.Microsecond), s.RelayRTT.N)
	fmt.Fprintf(w, "input→ack RTT   p50 %-10s p99 %-10s (n=%d)\n", s.InputRTT.P50.Round(time.Microsecond), s.InputRTT.P99.Round(time.Microsecond), s.InputRTT.N)
	printProbes(w, s)
	for i, e := range s.Errors {
		if i == 5 {
			fmt.Fprintf(w, "… %d more causes\n", len(s.Errors)-5)
			break
		}
		fmt.Fprintf(w, "error: %d × %s\n", e.Count, e.Cause)
	}
}
