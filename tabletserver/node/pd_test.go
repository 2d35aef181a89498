package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/errs"
)

// A placement command a store answers with "not yet" is logged at debug
// level, as PD sends it again with the next heartbeat; anything else is a
// warning.
func TestCommandFailureLevel(t *testing.T) {
	notYet := errs.ServerBusy("tablet 7: learner 9 has not caught up (has index 0 of 1554); not promoting it yet", 500)
	require.Equal(t, slog.LevelDebug, commandFailureLevel(notYet))
	require.Equal(t, slog.LevelDebug, commandFailureLevel(fmt.Errorf("promote: %w", notYet)))
	require.Equal(t, slog.LevelWarn, commandFailureLevel(errs.TabletNotFound(7, 1)))
	require.Equal(t, slog.LevelWarn, commandFailureLevel(context.DeadlineExceeded))
	require.Equal(t, slog.LevelWarn, commandFailureLevel(errors.New("unknown command")))
}
