package backup

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A file:// backup does not depend on os.TempDir: fileblob publishes an
// object by renaming its temporary file, which fails when the temporary
// directory is on another file system than the backup ("invalid
// cross-device link", as with a backup to /dev/shm or a mounted disk).
// Here TMPDIR names a directory that does not exist, so a temporary file
// made there fails as well.
func TestFileStorageIgnoresTempDir(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	ctx := t.Context()
	st, err := openStorage(ctx, "file://"+dir, true)
	require.NoError(t, err)
	defer st.close()
	require.NoError(t, st.write(ctx, "checkpoint/job.json", []byte(`{"ok":true}`)))
	got, err := st.read(ctx, "checkpoint/job.json")
	require.NoError(t, err)
	require.Equal(t, `{"ok":true}`, string(got))
	names, err := st.list(ctx, "checkpoint/")
	require.NoError(t, err)
	require.Equal(t, []string{"checkpoint/job.json"}, names, "no temporary file is left beside the object")
}
