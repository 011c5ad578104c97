package session

import (
	"os"
	"testing"

	"github.com/cellgrid/cellgrid/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
