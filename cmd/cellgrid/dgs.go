package main

import (
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cellgrid/cellgrid/dgs"
)

func dgsCmd(st starters) *cobra.Command {
	return &cobra.Command{
		Use:                "dgs [--cell ID --id ID --nats URL --addr HOST:PORT …]",
		Short:              "Run a dedicated game server (the sample arena) for a cell's fleet",
		DisableFlagParsing: true, // dgs.Main owns its flags: the launcher's contract
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := st.dgs(withoutRootFlags(args), cmd.ErrOrStderr()); code != 0 {
				return errExit(code)
			}
			return nil
		},
	}
}

// withoutRootFlags drops the root's --log-format and --log-level: with
// flag parsing off, cobra hands `cellgrid --log-level debug dgs …` the
// root's flags too, and dgs.Main would refuse them.
func withoutRootFlags(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "log-format" || name == "log-level") {
			if !hasValue {
				i++ // the value is the next argument
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

func startDGS(args []string, stderr io.Writer) int { return dgs.Main(args, stderr) }
