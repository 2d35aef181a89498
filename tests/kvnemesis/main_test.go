package kvnemesis

import (
	"log/slog"
	"os"
	"testing"
)

// TestMain keeps the servers' logs to warnings: a soak's info logs would
// run to gigabytes, and failures are reported from the history.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	os.Exit(m.Run())
}
