package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cellgrid/cellgrid/client"
	"github.com/cellgrid/cellgrid/client/bots"
	"github.com/cellgrid/cellgrid/devstack"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

// consoleAdminDevice is the guest device the console test's stack makes an
// admin (devstack.Config.AdminDevices, `cellgrid dev --admin-device`).
const consoleAdminDevice = "console-admin-device-01"

// chromiumPath finds Debian's chromium, failing with the install command.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: run (as root) `apt-get update && apt-get install -y chromium`")
	return ""
}

// browserTab opens a new tab of one headless chromium; each tab has its
// own sessionStorage, so its own login.
func browserTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	return tab
}

// TestOpsConsoleInChromium opens /ops on a three-cell dev stack in
// headless chromium: an admin sees the three cells, drains one with its
// button and sees the state change live (the cell's heartbeat reaches the
// topology and the server-sent events reach the page), then undrains it;
// a player opening the same page sees the cells but no button, and the
// admin API refuses the player's token with 403.
func TestOpsConsoleInChromium(t *testing.T) {
	exe := chromiumPath(t)
	cells := []string{"eu-west-1", "us-east-1", "ap-south-1"}
	st := startConsoleStack(t, cells)
	testenv.Eventually(t, 15*time.Second, func() error { return ready(st.GlobalURL) })

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	// The first action starts the browser; it lives as long as browser.
	if err := chromedp.Do(browser, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(browser, 3*time.Minute)
	defer cancel()

	cellState := func(id string) string { return fmt.Sprintf(`.cell[data-cell=%q] .state`, id) }
	login := func(tab context.Context, device string) {
		t.Helper()
		if err := chromedp.Do(tab,
			chromedp.Navigate(st.GlobalURL+"/ops"),
			chromedp.WaitVisible(chromedp.ID("device")),
			chromedp.SendKeys(chromedp.ID("device"), device),
			chromedp.Click(chromedp.ID("login")),
		); err != nil {
			t.Fatalf("login %s: %v", device, err)
		}
		for _, c := range cells {
			if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(cellState(c)))); err != nil {
				t.Fatalf("%s: cell %s never shown: %v", device, c, err)
			}
		}
	}
	count := func(tab context.Context, selector string) int {
		t.Helper()
		n, err := chromedp.Run(tab, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, selector)))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	text := func(tab context.Context, selector string) string {
		t.Helper()
		s, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(selector)))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(s)
	}
	waitState := func(tab context.Context, id, state string) {
		t.Helper()
		sel := fmt.Sprintf(`.cell[data-cell=%q] .state.%s`, id, state)
		wctx, cancel := context.WithTimeout(tab, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
			t.Fatalf("the page never showed %s %s (it shows %q): %v", id, state, text(tab, cellState(id)), err)
		}
	}

	// The admin.
	admin := browserTab(t, ctx)
	login(admin, consoleAdminDevice)
	if n := count(admin, ".cell"); n != 3 {
		t.Fatalf("admin sees %d cells, want 3", n)
	}
	if role := text(admin, "#role"); role != "admin" {
		t.Fatalf("admin page says role %q", role)
	}
	if err := chromedp.Do(admin, chromedp.WaitVisible(chromedp.CSS(`button.drain[data-cell="eu-west-1"]`))); err != nil {
		t.Fatal(err)
	}
	if n := count(admin, "#regions button.drain"); n != 3 {
		t.Fatalf("admin sees %d drain buttons, want 3", n)
	}
	for _, c := range cells {
		if s := text(admin, cellState(c)); s != "healthy" {
			t.Fatalf("cell %s shows %q before the drain", c, s)
		}
	}
	if err := chromedp.Do(admin,
		chromedp.SendKeys(chromedp.ID("reason"), "console test"),
		chromedp.Click(chromedp.CSS(`button.drain[data-cell="eu-west-1"]`))); err != nil {
		t.Fatal(err)
	}
	waitState(admin, "eu-west-1", "draining")
	for _, c := range cells[1:] {
		if s := text(admin, cellState(c)); s != "healthy" {
			t.Fatalf("cell %s shows %q after draining eu-west-1", c, s)
		}
	}
	// The drain was real: the cell refuses tickets; and it was audited
	// (the page lists the audit log).
	pc, err := client.New(client.Config{GlobalURL: st.GlobalURL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.LoginDevice(ctx, "console-player-device-1"); err != nil {
		t.Fatal(err)
	}
	topo, err := pc.Topology(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range topo {
		if c.ID == "eu-west-1" {
			if _, err := pc.Join(ctx, c, client.JoinRequest{GameMode: "duel"}); err == nil || !strings.Contains(err.Error(), "cell_draining") {
				t.Fatalf("join at the drained cell: %v, want cell_draining", err)
			}
		}
	}
	if err := chromedp.Do(admin, chromedp.WaitVisible(chromedp.CSS(`#audit tr`))); err != nil {
		t.Fatal(err)
	}
	if row := text(admin, "#audit tr"); !strings.Contains(row, "cell.drain") || !strings.Contains(row, "eu-west-1") {
		t.Fatalf("audit row on the page: %q", row)
	}
	// Screenshots go to the test's temp folder, or to
	// $CELLGRID_SCREENSHOT_DIR to keep them after the test.
	dir := os.Getenv("CELLGRID_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	shot := filepath.Join(dir, "ops-admin.png")
	png, err := chromedp.Run(admin, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the admin's console: %s (%d bytes)", shot, len(png))

	// The player: same page, same cells, no buttons; the admin API refuses.
	player := browserTab(t, ctx)
	login(player, "console-player-device-1")
	waitState(player, "eu-west-1", "draining")
	if role := text(player, "#role"); role != "player" {
		t.Fatalf("player page says role %q", role)
	}
	if n := count(player, ".cell"); n != 3 {
		t.Fatalf("player sees %d cells, want 3", n)
	}
	if n := count(player, "#regions button"); n != 0 {
		t.Fatalf("player sees %d buttons, want none", n)
	}
	type refusal struct {
		Status int    `json:"status"`
		Code   string `json:"code"`
	}
	refused, err := chromedp.Run(player, chromedp.Evaluate[refusal](`fetch("/ops/cells/us-east-1/drain", {method: "POST",
			headers: {Authorization: "Bearer " + sessionStorage.getItem("cellgrid.ops.token")}})
		.then(async (r) => ({status: r.status, code: (await r.json()).error.code}))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if refused.Status != http.StatusForbidden || refused.Code != "forbidden" {
		t.Fatalf("the player's drain: %+v, want 403 forbidden", refused)
	}
	playerShot := filepath.Join(filepath.Dir(shot), "ops-player.png")
	if png, err = chromedp.Run(player, chromedp.FullScreenshot(100)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(playerShot, png, 0o644); err != nil {
		t.Fatal(err)
	}

	// A flag on the player shows up on the admin's page; confirming it
	// with the button takes it off the open list and into the audit log.
	var flagID string
	if err := st.DB().QueryRow(ctx, `INSERT INTO player_flags (player_id, rule, window_start, observed, threshold)
		SELECT player_id, 'score_event_rate', now(), 500, 120 FROM auth_identities WHERE subject = 'console-player-device-1'
		RETURNING id::text`).Scan(&flagID); err != nil {
		t.Fatal(err)
	}
	flagRow := fmt.Sprintf(`#flags tr[data-flag=%q]`, flagID)
	if err := chromedp.Do(admin, chromedp.WaitVisible(chromedp.CSS(flagRow+" button.confirm"))); err != nil {
		t.Fatalf("the flag never appeared on the admin's page: %v", err)
	}
	if n := count(player, "#flags tr"); n != 0 {
		t.Fatalf("the player's page lists %d flags, want none", n)
	}
	if err := chromedp.Do(admin, chromedp.Click(chromedp.CSS(flagRow+" button.confirm"))); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if n := count(admin, flagRow); n != 0 {
			return fmt.Errorf("the reviewed flag is still listed")
		}
		return nil
	})
	var verdict string
	if err := st.DB().QueryRow(ctx, `SELECT verdict FROM flag_reviews WHERE flag_id = $1`, flagID).Scan(&verdict); err != nil || verdict != "confirmed" {
		t.Fatalf("flag review: %q %v", verdict, err)
	}

	// A grant from the LiveOps form goes through the ledger.
	var playerID string
	if err := st.DB().QueryRow(ctx, `SELECT player_id::text FROM auth_identities WHERE subject = 'console-player-device-1'`).Scan(&playerID); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(admin,
		chromedp.SendKeys(chromedp.ID("grant-player"), playerID),
		chromedp.SendKeys(chromedp.ID("grant-what"), "gold"),
		chromedp.SendKeys(chromedp.ID("grant-amount"), "25"),
		chromedp.Click(chromedp.ID("grant")),
		chromedp.WaitVisible(chromedp.CSS(`#audit tr:first-child`)),
	); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if got := text(admin, "#grant-result"); got != "gold: 1000 → 1025" {
			return fmt.Errorf("grant result on the page: %q", got)
		}
		return nil
	})
	var wallet struct {
		Balances map[string]int64 `json:"balances"`
	}
	if err := pc.Get(ctx, st.GlobalURL+"/wallet", &wallet); err != nil || wallet.Balances["gold"] != 1025 {
		t.Fatalf("the player's wallet after the grant: %v %v", wallet.Balances, err)
	}
	if n := count(player, "#liveops-box:not([hidden])"); n != 0 {
		t.Fatal("the player's page shows the LiveOps form")
	}

	// Undrain from the admin's page; both pages follow.
	if err := chromedp.Do(admin, chromedp.Click(chromedp.CSS(`button.undrain[data-cell="eu-west-1"]`))); err != nil {
		t.Fatal(err)
	}
	waitState(admin, "eu-west-1", "healthy")
	waitState(player, "eu-west-1", "healthy")
	if s := text(player, "#regions"); strings.Contains(s, "us-east-1 draining") {
		t.Fatalf("the refused drain changed us-east-1: %q", s)
	}
	// Region failover from the console: both pages show it, then restore.
	regionState := func(tab context.Context, region, state string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(tab, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`.region[data-region=%q] .region-state.%s`, region, state)))); err != nil {
			t.Fatalf("region %s never showed %s: %v", region, state, err)
		}
	}
	if err := chromedp.Do(admin, chromedp.Click(chromedp.CSS(`button.region-failover[data-region="ap-south-1"]`))); err != nil {
		t.Fatal(err)
	}
	regionState(admin, "ap-south-1", "failed_over")
	regionState(player, "ap-south-1", "failed_over")
	waitState(player, "ap-south-1", "failed_over")
	if err := chromedp.Do(admin, chromedp.Click(chromedp.CSS(`button.region-restore[data-region="ap-south-1"]`))); err != nil {
		t.Fatal(err)
	}
	regionState(player, "ap-south-1", "active")

	var n int
	if err := st.DB().QueryRow(ctx, `SELECT count(*) FROM ops_audit WHERE target = 'eu-west-1' AND outcome = 'ok'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("audit rows for eu-west-1: %d (%v), want drain and undrain", n, err)
	}
	if err := st.DB().QueryRow(ctx, `SELECT count(*) FROM ops_audit WHERE target = 'us-east-1'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("audit rows for us-east-1: %d (%v), want none (the player was refused)", n, err)
	}
}

// startConsoleStack is startStack with an admin device for the console.
func startConsoleStack(t *testing.T, cells []string) *devstack.Stack {
	t.Helper()
	d := testenv.NewDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	st, err := devstack.Start(ctx, devstack.Config{
		DataDir: t.TempDir(), Cells: cells, DatabaseURL: d.URL, Ephemeral: true,
		DGSCommand: dgsCommand(t), DGSEnv: []string{dgsChildEnv + "=1"},
		DGSArgs:     []string{"--score-limit", "2", "--time-limit", "6s", "--wait-for-players", "20s"},
		FleetBuffer: 1, AdminDevices: []string{consoleAdminDevice},
	}, quietLog())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stack run: %v", err)
		}
	})
	return st
}

// TestOpsFleetViewFollowsMatches plays a duel on a dev stack and watches
// the console's snapshot (as an admin, through the API the page uses): the
// match shows up in the cell's load from the session events the cell
// publishes (players and matches in play, matches started per minute) and
// leaves it when it ends; the DGS counts come from the DGS heartbeats.
func TestOpsFleetViewFollowsMatches(t *testing.T) {
	st := startConsoleStack(t, []string{"eu-west-1"})
	testenv.Eventually(t, 15*time.Second, func() error { return ready(st.GlobalURL) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := client.New(client.Config{GlobalURL: st.GlobalURL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.LoginDevice(ctx, consoleAdminDevice); err != nil {
		t.Fatal(err)
	}
	type load struct {
		DGS              map[string]map[string]int `json:"dgs"`
		Players          int                       `json:"players"`
		Matches          int                       `json:"matches"`
		MatchesPerMinute int                       `json:"matches_per_minute"`
	}
	snapshot := func() load {
		t.Helper()
		var s struct {
			Role    string `json:"role"`
			Regions []struct {
				Cells []struct {
					ID   string `json:"id"`
					Load *load  `json:"load"`
				} `json:"cells"`
			} `json:"regions"`
		}
		if err := admin.Get(ctx, st.GlobalURL+"/ops/snapshot", &s); err != nil {
			t.Fatal(err)
		}
		if s.Role != "admin" || len(s.Regions) != 1 || s.Regions[0].Cells[0].Load == nil {
			t.Fatalf("snapshot %+v", s)
		}
		return *s.Regions[0].Cells[0].Load
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if l := snapshot(); l.DGS["dev"]["ready"] < 1 {
			return fmt.Errorf("no Ready DGS seen yet: %+v", l)
		}
		return nil
	})
	done := make(chan error, 1)
	go func() {
		sum, err := bots.Run(ctx, bots.Config{GlobalURL: st.GlobalURL, Players: 2, Mode: "duel", MatchTimeout: 90 * time.Second}, nil)
		if err == nil && sum.MatchesCompleted != 1 {
			err = fmt.Errorf("bots: %+v", sum)
		}
		done <- err
	}()
	testenv.Eventually(t, 60*time.Second, func() error {
		if l := snapshot(); l.Matches != 1 || l.Players != 2 || l.MatchesPerMinute != 1 || l.DGS["dev"]["allocated"] < 1 {
			return fmt.Errorf("the match is not on the console yet: %+v", l)
		}
		return nil
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if l := snapshot(); l.Matches != 0 || l.Players != 0 || l.MatchesPerMinute != 1 {
			return fmt.Errorf("the ended match is still in play on the console: %+v", l)
		}
		return nil
	})
}
