package main

import (
	"fmt"
	"os"
)

// envOr returns the environment variable key, or def when unset.
func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

// required reports a setting that is neither a flag nor in the environment.
// Flags that an environment variable may satisfy are never marked required
// with cobra: cobra counts only flags given on the command line, so a
// Nomad job passing CELLGRID_DB would be refused.
func required(value, flag, env string) error {
	if value == "" {
		return fmt.Errorf("--%s (or env %s) is required", flag, env)
	}
	return nil
}
