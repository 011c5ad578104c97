package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cellgrid/cellgrid/internal/db"
)

func migrateCmd(rf *rootFlags) *cobra.Command {
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
			ctx := cmd.Context()
			pool, err := inf.openDB(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			v, err := db.Migrate(ctx, pool)
			if err != nil {
				return err
			}
			log.Info("schema migrated", "version", v)
			if mr.PrimaryRegion != "" {
				ran, err := db.ApplyMultiRegion(ctx, pool, mr)
				if err != nil {
					return err
				}
				log.Info("multi-region DDL", "applied", ran)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "schema at version %d\n", v)
			return nil
		},
	}
	inf.registerDB(cmd.Flags(), "database URL (PostgreSQL or CockroachDB)")
	cmd.Flags().StringVar(&mr.Database, "crdb-database", "cellgrid", "CockroachDB: database to make multi-region")
	cmd.Flags().StringVar(&mr.PrimaryRegion, "crdb-primary-region", "", "CockroachDB: primary region (enables multi-region DDL)")
	cmd.Flags().StringSliceVar(&mr.Regions, "crdb-region", nil, "CockroachDB: additional region (repeatable)")
	cmd.Flags().BoolVar(&mr.SurviveRegion, "crdb-survive-region", false, "CockroachDB: SURVIVE REGION FAILURE (needs ≥ 3 regions)")
	return cmd
}
