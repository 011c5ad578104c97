package ops

import (
	"os"
	"testing"

	"github.com/cellgrid/cellgrid/internal/testenv"
)

// TestMain stops the shared PostgreSQL after the tests.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
