package mysqlwire

import (
	"fmt"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/kvclient"
	sqllite "github.com/shaledb/shale/sql-lite"
)

// A write refused because a store's disk is full reaches a MySQL client
// as MySQL's own disk-full error, 1021, whatever wraps it on the way.
func TestDiskFullIsMySQL1021(t *testing.T) {
	kvErr := &kvclient.Error{Kind: kvclient.ErrDiskFull, Msg: "put", Cause: errs.DiskFull(2, 0, 500)}
	for _, err := range []error{
		kvErr,
		&sqllite.Error{Code: sqllite.CodeStorage, Msg: "insert: " + kvErr.Error(), Cause: kvErr},
		fmt.Errorf("commit: %w", kvErr),
	} {
		me := toMySQL(err)
		require.Equal(t, uint16(mysql.ER_DISK_FULL), me.Code, "%v", err)
		require.Equal(t, "HY000", me.State)
	}
}
