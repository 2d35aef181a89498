package sqllite

import (
	"github.com/shaledb/shale/kvclient"
)

// pushdown is the part of a WHERE clause the tablet servers evaluate.
type pushdown struct {
	desc []string
	f    []kvclient.Condition
}

func (p *pushdown) readOption() kvclient.ReadOption { return nil }
