package store_test

import (
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/tabletserver/storetest"
)

func rowKey(row string) []byte { return keys.RowKey(storetest.TestTable.TableId, []byte(row)) }
