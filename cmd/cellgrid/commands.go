package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// extraCommands lists the role subcommands wired from their own files.
func extraCommands(rf *rootFlags) []*cobra.Command {
	return []*cobra.Command{botsCmd(rf), cellCmd(rf), dgsCmd(), jobsCmd(rf), regionCmd(rf), drillCmd(rf)}
}

// errExit carries a child's exit code up to main.
type errExit int

func (e errExit) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
