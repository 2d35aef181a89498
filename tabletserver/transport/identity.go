package transport

import (
	"context"
	"crypto/x509"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/grpcutil"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/proto/transportpb"
)

// peerIdentity binds one inbound stream to its connection's certificate:
// the stores the certificate has been checked to speak for. A stream comes
// from one connection, so the check runs once per claimed store per
// stream, not per batch (docs/decisions.md, "Transport identity").
type peerIdentity struct {
	t        *Transport
	cert     *x509.Certificate
	verified uint64 // the store already checked (a sender claims one)
}

// newPeerIdentity reads the stream's certificate. On a transport without
// TLS (--insecure) every claim is believed, as before.
func (t *Transport) newPeerIdentity(ctx context.Context) (*peerIdentity, error) {
	if t.opts.TLS == nil {
		return nil, nil
	}
	cert := grpcutil.PeerCertificate(ctx)
	if cert == nil {
		return nil, status.Error(codes.Unauthenticated, "transport: raft traffic needs a node certificate; the connection has none")
	}
	if !security.IsNodeCert(cert) {
		t.log.Warn("refused raft traffic from a client certificate", "cn", cert.Subject.CommonName)
		return nil, status.Errorf(codes.PermissionDenied, "transport: certificate %q is a client certificate; only nodes may send raft traffic", cert.Subject.CommonName)
	}
	return &peerIdentity{t: t, cert: cert}, nil
}

// checkBatch refuses a batch whose claimed store is not the certificate's,
// or whose messages claim another store than the batch.
func (p *peerIdentity) checkBatch(b *transportpb.RaftMessageBatch) error {
	if p == nil {
		return nil
	}
	if err := p.checkStore(b.FromStore); err != nil {
		return err
	}
	for _, m := range b.Messages {
		if m.FromStore != b.FromStore {
			return p.refuse(m.FromStore, fmt.Errorf("a message claims store %d inside a batch from store %d", m.FromStore, b.FromStore))
		}
	}
	return nil
}

// checkStore verifies that the certificate covers the host of the claimed
// store's address, as the Resolver (PD, or the static peer list) knows it.
func (p *peerIdentity) checkStore(storeID uint64) error {
	if p == nil || (p.verified != 0 && p.verified == storeID) {
		return nil
	}
	addr, err := p.t.opts.Resolver.Resolve(storeID)
	if err != nil {
		return p.refuse(storeID, fmt.Errorf("its address is unknown: %w", err))
	}
	if err := security.CoversAddress(p.cert, addr); err != nil {
		return p.refuse(storeID, fmt.Errorf("store %d is at %s: %w", storeID, addr, err))
	}
	p.verified = storeID
	return nil
}

func (p *peerIdentity) refuse(storeID uint64, why error) error {
	p.t.log.Warn("refused raft traffic claiming another store's identity", "claimed_store", storeID, "cn", p.cert.Subject.CommonName, "err", why)
	return status.Errorf(codes.PermissionDenied, "transport: certificate %q may not speak for store %d: %v", p.cert.Subject.CommonName, storeID, why)
}
