package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/cellgrid/cellgrid/global/ops"
)

// opsFlags are the role flags of `cellgrid global` (the /ops console and
// admin API).
type opsFlags struct {
	admins, support            []string
	claim                      string
	adminGroups, supportGroups []string
}

func (of *opsFlags) register(f *pflag.FlagSet) {
	f.StringArrayVar(&of.admins, "ops-admin", nil, "admin of the /ops console and API: a player id, or ISSUER|SUBJECT of a login identity (repeatable)")
	f.StringArrayVar(&of.support, "ops-support", nil, "support role (reads the fleet and flags, reviews flags): a player id or ISSUER|SUBJECT (repeatable)")
	f.StringVar(&of.claim, "ops-roles-claim", "groups", "ID-token claim listing the player's groups")
	f.StringArrayVar(&of.adminGroups, "ops-admin-group", nil, "group in --ops-roles-claim that makes a player admin (repeatable)")
	f.StringArrayVar(&of.supportGroups, "ops-support-group", nil, "group in --ops-roles-claim that gives the support role (repeatable)")
}

func (of *opsFlags) config() (ops.Config, error) {
	cfg := ops.Config{RolesClaim: of.claim, AdminGroups: of.adminGroups, SupportGroups: of.supportGroups}
	for _, s := range of.admins {
		if err := cfg.Admins.Add(s); err != nil {
			return cfg, fmt.Errorf("--ops-admin: %w", err)
		}
	}
	for _, s := range of.support {
		if err := cfg.Support.Add(s); err != nil {
			return cfg, fmt.Errorf("--ops-support: %w", err)
		}
	}
	return cfg, nil
}
