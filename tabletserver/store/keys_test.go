package store_test

import (
	"errors"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/tabletserver/storetest"
)

func rowKey(row string) []byte { return keys.RowKey(storetest.TestTable.TableId, []byte(row)) }

var errNotYet = errors.New("not yet")
