package pdclient

import (
	"bytes"
	"context"
	"fmt"

	"github.com/shaledb/shale/proto/pdpb"
)

// Typed wrappers: each fills in the request header and retries on the leader.

// RegisterStore calls PD.RegisterStore.
func (c *Client) RegisterStore(ctx context.Context, req *pdpb.RegisterStoreRequest) (*pdpb.RegisterStoreResponse, error) {
	req.Header = c.header()
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.RegisterStoreResponse, error) {
		req.Header = c.header()
		return cl.RegisterStore(ctx, req)
	})
	if err == nil {
		err = c.learn(resp.ClusterId)
	}
	return resp, err
}

// StoreHeartbeat calls PD.StoreHeartbeat.
func (c *Client) StoreHeartbeat(ctx context.Context, req *pdpb.StoreHeartbeatRequest) (*pdpb.StoreHeartbeatResponse, error) {
	req.Header = c.header()
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.StoreHeartbeatResponse, error) {
		req.Header = c.header()
		return cl.StoreHeartbeat(ctx, req)
	})
	return resp, err
}

// TabletHeartbeat calls PD.TabletHeartbeat.
func (c *Client) TabletHeartbeat(ctx context.Context, req *pdpb.TabletHeartbeatRequest) (*pdpb.TabletHeartbeatResponse, error) {
	req.Header = c.header()
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.TabletHeartbeatResponse, error) {
		req.Header = c.header()
		return cl.TabletHeartbeat(ctx, req)
	})
	return resp, err
}

// GetTablet calls PD.GetTablet.
func (c *Client) GetTablet(ctx context.Context, req *pdpb.GetTabletRequest) (*pdpb.GetTabletResponse, error) {
	req.Header = c.header()
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.GetTabletResponse, error) {
		req.Header = c.header()
		return cl.GetTablet(ctx, req)
	})
	return resp, err
}

// GetTabletByID calls PD.GetTabletByID.
func (c *Client) GetTabletByID(ctx context.Context, req *pdpb.GetTabletByIDRequest) (*pdpb.GetTabletResponse, error) {
	req.Header = c.header()
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.GetTabletResponse, error) {
		req.Header = c.header()
		return cl.GetTabletByID(ctx, req)
	})
	return resp, err
}

// ScanTablets calls PD.ScanTablets.
func (c *Client) ScanTablets(ctx context.Context, req *pdpb.ScanTabletsRequest) (*pdpb.ScanTabletsResponse, error) {
	req.Header = c.header()
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.ScanTabletsResponse, error) {
		req.Header = c.header()
		return cl.ScanTablets(ctx, req)
	})
	return resp, err
}

// GetStore calls PD.GetStore.
func (c *Client) GetStore(ctx context.Context, req *pdpb.GetStoreRequest) (*pdpb.GetStoreResponse, error) {
	req.Header = c.header()
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.GetStoreResponse, error) {
		req.Header = c.header()
		return cl.GetStore(ctx, req)
	})
	return resp, err
}

// ListStores calls PD.ListStores.
func (c *Client) ListStores(ctx context.Context, req *pdpb.ListStoresRequest) (*pdpb.ListStoresResponse, error) {
	req.Header = c.header()
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.ListStoresResponse, error) {
		req.Header = c.header()
		return cl.ListStores(ctx, req)
	})
	return resp, err
}

// AllocID calls PD.AllocID.
func (c *Client) AllocID(ctx context.Context, req *pdpb.AllocIDRequest) (*pdpb.AllocIDResponse, error) {
	req.Header = c.header()
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.AllocIDResponse, error) {
		req.Header = c.header()
		return cl.AllocID(ctx, req)
	})
	return resp, err
}

// GetTimestamp calls PD.GetTimestamp.
func (c *Client) GetTimestamp(ctx context.Context, req *pdpb.GetTimestampRequest) (*pdpb.GetTimestampResponse, error) {
	req.Header = c.header()
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.GetTimestampResponse, error) {
		req.Header = c.header()
		return cl.GetTimestamp(ctx, req)
	})
	return resp, err
}

// CreateTable calls PD.CreateTable.
func (c *Client) CreateTable(ctx context.Context, req *pdpb.CreateTableRequest) (*pdpb.CreateTableResponse, error) {
	req.Header = c.header()
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.CreateTableResponse, error) {
		req.Header = c.header()
		return cl.CreateTable(ctx, req)
	})
	return resp, err
}

// DropTable calls PD.DropTable.
func (c *Client) DropTable(ctx context.Context, req *pdpb.DropTableRequest) (*pdpb.DropTableResponse, error) {
	req.Header = c.header()
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.DropTableResponse, error) {
		req.Header = c.header()
		return cl.DropTable(ctx, req)
	})
	return resp, err
}

// SetSQLSchema calls PD.SetSQLSchema.
func (c *Client) SetSQLSchema(ctx context.Context, req *pdpb.SetSQLSchemaRequest) (*pdpb.SetSQLSchemaResponse, error) {
	req.Header = c.header()
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.SetSQLSchemaResponse, error) {
		req.Header = c.header()
		return cl.SetSQLSchema(ctx, req)
	})
	return resp, err
}

// GetTable calls PD.GetTable.
func (c *Client) GetTable(ctx context.Context, req *pdpb.GetTableRequest) (*pdpb.GetTableResponse, error) {
	req.Header = c.header()
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.GetTableResponse, error) {
		req.Header = c.header()
		return cl.GetTable(ctx, req)
	})
	return resp, err
}

// ListTables calls PD.ListTables.
func (c *Client) ListTables(ctx context.Context, req *pdpb.ListTablesRequest) (*pdpb.ListTablesResponse, error) {
	req.Header = c.header()
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.ListTablesResponse, error) {
		req.Header = c.header()
		return cl.ListTables(ctx, req)
	})
	return resp, err
}

// GetConfig calls PD.GetConfig.
func (c *Client) GetConfig(ctx context.Context, req *pdpb.GetConfigRequest) (*pdpb.GetConfigResponse, error) {
	req.Header = c.header()
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.GetConfigResponse, error) {
		req.Header = c.header()
		return cl.GetConfig(ctx, req)
	})
	return resp, err
}

// SetConfig calls PD.SetConfig.
func (c *Client) SetConfig(ctx context.Context, req *pdpb.SetConfigRequest) (*pdpb.SetConfigResponse, error) {
	req.Header = c.header()
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.SetConfigResponse, error) {
		req.Header = c.header()
		return cl.SetConfig(ctx, req)
	})
	return resp, err
}

// ListOperators calls PD.ListOperators.
func (c *Client) ListOperators(ctx context.Context, req *pdpb.ListOperatorsRequest) (*pdpb.ListOperatorsResponse, error) {
	req.Header = c.header()
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.ListOperatorsResponse, error) {
		req.Header = c.header()
		return cl.ListOperators(ctx, req)
	})
	return resp, err
}

// AddOperator calls PD.AddOperator.
func (c *Client) AddOperator(ctx context.Context, req *pdpb.AddOperatorRequest) (*pdpb.AddOperatorResponse, error) {
	req.Header = c.header()
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.AddOperatorResponse, error) {
		req.Header = c.header()
		return cl.AddOperator(ctx, req)
	})
	return resp, err
}

// DrainStore calls PD.DrainStore.
func (c *Client) DrainStore(ctx context.Context, req *pdpb.DrainStoreRequest) (*pdpb.DrainStoreResponse, error) {
	req.Header = c.header()
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.DrainStoreResponse, error) {
		req.Header = c.header()
		return cl.DrainStore(ctx, req)
	})
	return resp, err
}

// ScanAllTablets returns up to limit tablets overlapping [start, end)
// (limit 0: all), paging through ScanTablets pageSize tablets at a time.
func (c *Client) ScanAllTablets(ctx context.Context, start, end []byte, limit, pageSize int) ([]*pdpb.TabletInfo, error) {
	if pageSize <= 0 {
		return nil, fmt.Errorf("pdclient: page size %d, want > 0", pageSize)
	}
	var out []*pdpb.TabletInfo
	for {
		page := pageSize
		if limit > 0 && limit-len(out) < page {
			page = limit - len(out)
		}
		resp, err := c.ScanTablets(ctx, &pdpb.ScanTabletsRequest{StartKey: start, EndKey: end, Limit: uint32(page)})
		if err != nil {
			return nil, err
		}
		out = append(out, resp.Tablets...)
		if len(resp.Tablets) < page || (limit > 0 && len(out) >= limit) {
			return out, nil
		}
		// A page ending at the key space's end, past end, or not moving
		// forward (a confused server) ends the scan.
		next := resp.Tablets[len(resp.Tablets)-1].GetTablet().GetEndKey()
		if len(next) == 0 || (len(end) != 0 && bytes.Compare(next, end) >= 0) || bytes.Compare(next, start) <= 0 {
			return out, nil
		}
		start = next
	}
}

// ReportSplit calls PD.ReportSplit.
func (c *Client) ReportSplit(ctx context.Context, req *pdpb.ReportSplitRequest) (*pdpb.ReportSplitResponse, error) {
	req.Header = c.header()
	return call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.ReportSplitResponse, error) {
		req.Header = c.header()
		return cl.ReportSplit(ctx, req)
	})
}

// SplitTablets calls PD.SplitTablets.
func (c *Client) SplitTablets(ctx context.Context, req *pdpb.SplitTabletsRequest) (*pdpb.SplitTabletsResponse, error) {
	req.Header = c.header()
	return call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.SplitTabletsResponse, error) {
		req.Header = c.header()
		return cl.SplitTablets(ctx, req)
	})
}
