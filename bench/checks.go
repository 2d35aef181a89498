package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/shaledb/shale/internal/grpcutil"
	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/pdpb"
)

// checkLoop forces a consistency check of every tablet (as `shale ctl
// check` does, one tablet at a time) every interval while a run goes on,
// so the run measures what checking costs the foreground. It counts what
// the checks found.
type checkLoop struct {
	pd       *pdclient.Client
	interval time.Duration
	status   io.Writer

	mu                         sync.Mutex
	checks, mismatches, failed int
	conns                      map[string]*grpc.ClientConn
}

// startChecks starts the loop; stop ends it and prints the counts.
func startChecks(ctx context.Context, pdAddrs []string, interval time.Duration, status io.Writer) (stop func(), err error) {
	pd, err := pdclient.New(pdAddrs, 0)
	if err != nil {
		return nil, err
	}
	l := &checkLoop{pd: pd, interval: interval, status: status, conns: map[string]*grpc.ClientConn{}}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.run(ctx)
	}()
	return func() {
		cancel()
		<-done
		for _, cc := range l.conns {
			cc.Close()
		}
		pd.Close()
		fmt.Fprintf(status, "consistency checks forced every %s: %d run, %d found a mismatch, %d failed\n", interval, l.checks, l.mismatches, l.failed)
	}, nil
}

func (l *checkLoop) run(ctx context.Context) {
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		l.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// round checks every tablet once.
func (l *checkLoop) round(ctx context.Context) {
	tablets, err := l.pd.ScanAllTablets(ctx, nil, nil, 0, 256)
	if err != nil {
		return
	}
	for _, ti := range tablets {
		if ctx.Err() != nil {
			return
		}
		resp, err := l.check(ctx, ti)
		l.mu.Lock()
		switch {
		case ctx.Err() != nil:
		case err != nil:
			l.failed++
		default:
			l.checks++
			if !resp.Consistent {
				l.mismatches++
			}
		}
		l.mu.Unlock()
	}
}

func (l *checkLoop) check(ctx context.Context, ti *pdpb.TabletInfo) (*kvpb.CheckTabletResponse, error) {
	st, err := l.pd.GetStore(ctx, &pdpb.GetStoreRequest{StoreId: ti.LeaderStoreId})
	if err != nil {
		return nil, err
	}
	addr := st.GetStore().GetStore().GetAddress()
	cc, ok := l.conns[addr]
	if !ok {
		if cc, err = grpc.NewClient(addr, grpcutil.DialOptions(nil)...); err != nil {
			return nil, err
		}
		l.conns[addr] = cc
	}
	return kvpb.NewTabletClient(cc).CheckTablet(ctx, &kvpb.CheckTabletRequest{TabletId: ti.GetTablet().GetTabletId()})
}
