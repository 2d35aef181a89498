package backup_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/backup"
	"github.com/shaledb/shale/kvclient"

	"math/rand/v2"
)

// Backups go to and come from an S3-compatible store (gofakes3, in
// process): a full and an incremental backup under a prefix, listed,
// verified and restored.
func TestS3RoundTrip(t *testing.T) {
	mem := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(mem).Server())
	defer srv.Close()
	require.NoError(t, mem.CreateBucket("bk"))
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	q := "?region=us-east-1&use_path_style=true&disable_https=true&endpoint=" + srv.URL
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	src := startEnv(t, ctx)
	_, err := src.cl.CreateTable(ctx, "s3", []kvclient.Family{{Name: "f"}, {Name: "g"}})
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(5, 5))
	mutateRandomly(t, ctx, src.table("s3"), rng, 200, 60)
	full := "s3://bk/cluster/full" + q
	o := backupOpts(src, full)
	o.Tables = []string{"s3"}
	_, err = backup.Run(ctx, o)
	require.NoError(t, err)
	mutateRandomly(t, ctx, src.table("s3"), rng, 200, 60)
	inc := "s3://bk/cluster/inc" + q
	o = backupOpts(src, inc)
	o.Tables, o.Since = []string{"s3"}, full
	_, err = backup.Run(ctx, o)
	require.NoError(t, err)
	want := src.dump("s3")

	infos, err := backup.List(ctx, "s3://bk/cluster"+q)
	require.NoError(t, err)
	require.Len(t, infos, 2)
	res, err := backup.Verify(ctx, inc)
	require.NoError(t, err)
	require.Equal(t, 2, res.Chain)
	_, err = backup.Restore(ctx, restoreOpts(t, src, inc, "s3", "s3_r"))
	require.NoError(t, err)
	require.Equal(t, want, src.dump("s3_r"))
}
