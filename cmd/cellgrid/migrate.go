package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/cellgrid/cellgrid/internal/db"
)

// migrateSetup is what `cellgrid migrate` resolved from its flags and
// environment.
type migrateSetup struct {
	Infra       infraFlags
	MultiRegion db.MultiRegion
}

func migrateCmd(rf *rootFlags, st starters) *cobra.Command {
	var inf infraFlags
	var mr db.MultiRegion
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the embedded schema migrations (and multi-region DDL on CockroachDB)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := rf.logger()
			if err != nil {
				return err
			}
			if err := inf.checkDB(); err != nil {
				return err
			}
			return st.migrate(cmd.Context(), cmd.OutOrStdout(), log, migrateSetup{Infra: inf, MultiRegion: mr})
		},
	}
	inf.registerDB(cmd.Flags(), "database URL (PostgreSQL or CockroachDB)")
	cmd.Flags().StringVar(&mr.Database, "crdb-database", "cellgrid", "CockroachDB: database to make multi-region")
	cmd.Flags().StringVar(&mr.PrimaryRegion, "crdb-primary-region", "", "CockroachDB: primary region (enables multi-region DDL)")
	cmd.Flags().StringSliceVar(&mr.Regions, "crdb-region", nil, "CockroachDB: additional region (repeatable)")
	cmd.Flags().BoolVar(&mr.SurviveRegion, "crdb-survive-region", false, "CockroachDB: SURVIVE REGION FAILURE (needs ≥ 3 regions)")
	return cmd
}

// startMigrate applies the migrations (and the multi-region DDL when asked).
func startMigrate(ctx context.Context, out io.Writer, log *slog.Logger, s migrateSetup) error {
	pool, err := s.Infra.openDB(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	v, err := db.Migrate(ctx, pool)
	if err != nil {
		return err
	}
	log.Info("schema migrated", "version", v)
	if s.MultiRegion.PrimaryRegion != "" {
		ran, err := db.ApplyMultiRegion(ctx, pool, s.MultiRegion)
		if err != nil {
			return err
		}
		log.Info("multi-region DDL", "applied", ran)
	}
	fmt.Fprintf(out, "schema at version %d\n", v)
	return nil
}
