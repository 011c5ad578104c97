package db

import (
	"slices"
	"strings"
	"testing"
)

func TestMultiRegionDDL(t *testing.T) {
	stmts, err := MultiRegion{
		Database:      "cellgrid",
		PrimaryRegion: "eu-west-1",
		Regions:       []string{"us-east-1", "eu-west-1", "ap-south-1"},
		SurviveRegion: true,
	}.DDL()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`ALTER DATABASE "cellgrid" SET PRIMARY REGION "eu-west-1"`,
		`ALTER DATABASE "cellgrid" ADD REGION IF NOT EXISTS "us-east-1"`,
		`ALTER DATABASE "cellgrid" ADD REGION IF NOT EXISTS "ap-south-1"`,
		`ALTER DATABASE "cellgrid" SURVIVE REGION FAILURE`,
		`ALTER TABLE "players" SET LOCALITY REGIONAL BY ROW`,
		`ALTER TABLE "wallet_balances" SET LOCALITY REGIONAL BY ROW`,
		`ALTER TABLE "transactions" SET LOCALITY REGIONAL BY ROW`,
		`ALTER TABLE "item_templates" SET LOCALITY GLOBAL`,
	}
	for _, w := range want {
		if !slices.Contains(stmts, w) {
			t.Errorf("missing %q in\n%s", w, strings.Join(stmts, "\n"))
		}
	}
	// Regions come before survival goals, which come before table localities.
	idx := func(s string) int { return slices.Index(stmts, s) }
	if !(idx(want[0]) < idx(want[1]) && idx(want[2]) < idx(want[3]) && idx(want[3]) < idx(want[4])) {
		t.Errorf("statements out of order:\n%s", strings.Join(stmts, "\n"))
	}
	if strings.Count(strings.Join(stmts, "\n"), `ADD REGION IF NOT EXISTS "eu-west-1"`) != 0 {
		t.Error("primary region added twice")
	}
	for _, tbl := range GlobalTables {
		if !slices.Contains(stmts, `ALTER TABLE "`+tbl+`" SET LOCALITY GLOBAL`) {
			t.Errorf("global table %s not GLOBAL", tbl)
		}
	}
	for _, tbl := range PlayerHomedTables {
		if !slices.Contains(stmts, `ALTER TABLE "`+tbl+`" SET LOCALITY REGIONAL BY ROW`) {
			t.Errorf("player-homed table %s not REGIONAL BY ROW", tbl)
		}
	}
}

func TestMultiRegionDDLRejects(t *testing.T) {
	if _, err := (MultiRegion{Database: "d", PrimaryRegion: "a", Regions: []string{"b"}, SurviveRegion: true}).DDL(); err == nil {
		t.Error("SURVIVE REGION FAILURE with 2 regions accepted")
	}
	if _, err := (MultiRegion{PrimaryRegion: "a"}).DDL(); err == nil {
		t.Error("missing database accepted")
	}
	stmts, err := MultiRegion{Database: "d", PrimaryRegion: "a"}.DDL()
	if err != nil || !slices.Contains(stmts, `ALTER DATABASE "d" SURVIVE ZONE FAILURE`) {
		t.Errorf("single region: %v %v", stmts, err)
	}
	stmts, _ = MultiRegion{Database: `we"ird`, PrimaryRegion: `r"1`}.DDL()
	if stmts[0] != `ALTER DATABASE "we""ird" SET PRIMARY REGION "r""1"` {
		t.Errorf("quoting: %s", stmts[0])
	}
}
