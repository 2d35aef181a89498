package node

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// An interrupted retirement is finished at the next start: identity.json
// says so (no store ID, the retired one), and moving the store's files
// aside may run again without losing the single copy kept.
func TestRetirementSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, writeIdentity(dir, identity{ClusterID: 9, Retired: 1004}))
	id, known, err := readIdentity(dir)
	require.NoError(t, err)
	require.True(t, known)
	require.Equal(t, identity{ClusterID: 9, Retired: 1004}, id)

	for _, d := range []string{"engine", "snapshots"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, d, "f"), []byte(d), 0o644))
	}
	require.NoError(t, quarantine(dir))
	require.NoError(t, quarantine(dir)) // again, as after a crash: nothing left to move
	aside, err := filepath.Glob(filepath.Join(dir, "corrupt-*"))
	require.NoError(t, err)
	require.Len(t, aside, 1)
	b, err := os.ReadFile(filepath.Join(aside[0], "engine", "f"))
	require.NoError(t, err)
	require.Equal(t, "engine", string(b))
	_, err = os.Stat(filepath.Join(dir, "engine"))
	require.True(t, os.IsNotExist(err))
	_, err = os.Stat(identityPath(dir))
	require.NoError(t, err, "identity.json stays")
}
