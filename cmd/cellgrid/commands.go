package main

import "github.com/spf13/cobra"

// extraCommands lists the role subcommands wired from their own files.
func extraCommands(rf *rootFlags) []*cobra.Command {
	return []*cobra.Command{botsCmd(rf)}
}
