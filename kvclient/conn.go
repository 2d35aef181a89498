package kvclient

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	"github.com/shaledb/shale/internal/grpcutil"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/proto/kvpb"
)

// storeResolver finds a store's address (PD GetStore).
type storeResolver interface {
	StoreAddr(ctx context.Context, storeID uint64) (string, error)
}

// connPool caches store addresses and keeps one grpc.ClientConn per
// address. A store's address is forgotten after a connection failure so the
// next request asks the PD again (the store may have moved).
type connPool struct {
	resolve storeResolver
	dial    []grpc.DialOption  // Options.DialOptions
	tls     *security.Reloader // Options.TLS

	mu struct {
		sync.Mutex
		closed bool
		addrs  map[uint64]string
		conns  map[string]*grpc.ClientConn
	}
}

func newConnPool(r storeResolver, dial []grpc.DialOption, tls *security.Reloader) *connPool {
	p := &connPool{resolve: r, dial: dial, tls: tls}
	p.mu.addrs = map[uint64]string{}
	p.mu.conns = map[string]*grpc.ClientConn{}
	return p
}

// conn returns the connection to a store.
func (p *connPool) conn(ctx context.Context, storeID uint64) (*grpc.ClientConn, error) {
	if storeID == 0 {
		return nil, fmt.Errorf("kvclient: tablet has no replica to send to")
	}
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	addr, ok := p.mu.addrs[storeID]
	p.mu.Unlock()
	if !ok {
		var err error
		if addr, err = p.resolve.StoreAddr(ctx, storeID); err != nil {
			return nil, fmt.Errorf("kvclient: resolving store %d: %w", storeID, err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return nil, ErrClosed
	}
	p.mu.addrs[storeID] = addr
	cc, ok := p.mu.conns[addr]
	if !ok {
		var err error
		opts := append(grpcutil.DialOptions(p.tls), p.dial...)
		cc, err = grpc.NewClient(addr, opts...)
		if err != nil {
			return nil, fmt.Errorf("kvclient: connecting to store %d at %s: %w", storeID, addr, err)
		}
		p.mu.conns[addr] = cc
	}
	return cc, nil
}

// tablet returns a Tablet API client for the store.
func (p *connPool) tablet(ctx context.Context, storeID uint64) (kvpb.TabletClient, *grpc.ClientConn, error) {
	cc, err := p.conn(ctx, storeID)
	if err != nil {
		return nil, nil, err
	}
	return kvpb.NewTabletClient(cc), cc, nil
}

// learnAddr records an address learned from a NotLeader hint.
func (p *connPool) learnAddr(storeID uint64, addr string) {
	if storeID == 0 || addr == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.addrs[storeID] = addr
}

// forget drops the store's cached address (after a connection failure).
// The connection stays pooled: it reconnects on its own if the store comes
// back at the same address.
func (p *connPool) forget(storeID uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.mu.addrs, storeID)
}

func (p *connPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.closed = true
	for _, cc := range p.mu.conns {
		cc.Close()
	}
	p.mu.conns = map[string]*grpc.ClientConn{}
}

// waitReady waits (at most maxWait) for cc to be connected. Writes call it
// before sending so that a dead store is skipped without the write ever
// leaving the client, which keeps that failure safely retryable.
func waitReady(ctx context.Context, cc *grpc.ClientConn, maxWait time.Duration) bool {
	s := cc.GetState()
	if s == connectivity.Ready {
		return true
	}
	if s == connectivity.Idle {
		cc.Connect()
	}
	wctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	for {
		s = cc.GetState()
		switch s {
		case connectivity.Ready:
			return true
		case connectivity.TransientFailure, connectivity.Shutdown:
			return false
		case connectivity.Idle:
			cc.Connect()
		}
		if !cc.WaitForStateChange(wctx, s) {
			return false
		}
	}
}
