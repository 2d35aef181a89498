package pdcluster

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// CreateTable returns with every tablet of the table routable (exact
// bounds, a leader), and SplitTablets returns with every key starting a
// routable tablet, splitting several tablets (each in one batch) at once;
// keys that already start a tablet are fine, malformed ones refused.
func TestCreateTableAndSplitTabletsReturnRoutable(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := c.PD().GetTablet(ctx, &pdpb.GetTabletRequest{Key: []byte("anything")}); err != nil {
		t.Fatal(err)
	}
	rows := []string{"c", "f", "i", "l", "o", "r", "u", "x"}
	var split [][]byte
	for _, r := range rows {
		split = append(split, []byte(r))
	}
	resp, err := c.PD().CreateTable(ctx, &pdpb.CreateTableRequest{Name: "t", Families: []*metapb.FamilySchema{{Name: "f"}}, SplitRows: split})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.Table.TableId
	bounds := [][]byte{keys.TablePrefix(id)}
	for _, r := range rows {
		bounds = append(bounds, keys.RowKey(id, []byte(r)))
	}
	bounds = append(bounds, keys.TablePrefix(id+1))
	if err := routable(ctx, c, bounds); err != nil {
		t.Fatalf("right after CreateTable: %v", err)
	}

	// Split points inside several tablets, one already a boundary.
	var more [][]byte
	for _, r := range []string{"a", "b", "d", "e", "m", "n", "f"} {
		more = append(more, keys.RowKey(id, []byte(r)))
	}
	if _, err := c.PD().SplitTablets(ctx, &pdpb.SplitTabletsRequest{SplitKeys: more}); err != nil {
		t.Fatal(err)
	}
	all := [][]byte{keys.TablePrefix(id)}
	for _, r := range []string{"a", "b", "c", "d", "e", "f", "i", "l", "m", "n", "o", "r", "u", "x"} {
		all = append(all, keys.RowKey(id, []byte(r)))
	}
	all = append(all, keys.TablePrefix(id+1))
	if err := routable(ctx, c, all); err != nil {
		t.Fatalf("right after SplitTablets: %v", err)
	}

	_, err = c.PD().SplitTablets(ctx, &pdpb.SplitTabletsRequest{SplitKeys: [][]byte{{}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("empty split key: %v, want InvalidArgument", err)
	}
}

// routable checks that PD routes each [bounds[i], bounds[i+1]) to one
// tablet with exactly those bounds and a leader.
func routable(ctx context.Context, c *testcluster.Cluster, bounds [][]byte) error {
	for i := 0; i+1 < len(bounds); i++ {
		resp, err := c.PD().GetTablet(ctx, &pdpb.GetTabletRequest{Key: bounds[i]})
		if err != nil {
			return fmt.Errorf("tablet %d: %v", i, err)
		}
		d := resp.Tablet.Tablet
		if !bytes.Equal(d.StartKey, bounds[i]) || !bytes.Equal(d.EndKey, bounds[i+1]) || resp.Tablet.LeaderStoreId == 0 {
			return fmt.Errorf("tablet %d: PD routes [%x, %x) leader %d, want [%x, %x) with a leader", i, d.StartKey, d.EndKey, resp.Tablet.LeaderStoreId, bounds[i], bounds[i+1])
		}
	}
	return nil
}
