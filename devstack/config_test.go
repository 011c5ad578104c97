package devstack

import (
	"slices"
	"testing"
	"time"
)

func TestDGSArgsMatchTimeLimit(t *testing.T) {
	cmd := []string{"/bin/cellgrid", "dgs"}
	for _, tc := range []struct {
		limit time.Duration
		extra []string
		want  []string
	}{
		{0, nil, []string{"dgs", "--time-limit=30s"}},
		{20 * time.Second, nil, []string{"dgs", "--time-limit=20s"}},
		{-1, nil, []string{"dgs"}},
		{0, []string{"--time-limit=5s"}, []string{"dgs", "--time-limit=30s", "--time-limit=5s"}},
	} {
		cfg := Config{DGSCommand: cmd, MatchTimeLimit: tc.limit, DGSArgs: tc.extra}
		if got := cfg.dgsArgs(); !slices.Equal(got, tc.want) {
			t.Errorf("limit %s extra %v: args %v, want %v", tc.limit, tc.extra, got, tc.want)
		}
		if !slices.Equal(cmd, []string{"/bin/cellgrid", "dgs"}) {
			t.Fatalf("DGSCommand modified: %v", cmd)
		}
	}
}
