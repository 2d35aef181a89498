package placementdriver

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/grpcutil"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/proto/metapb"
)

// checkStoreIdentity binds a store's address to the certificate that
// registers it (docs/decisions.md, "Transport identity"): on a secure
// cluster only a node certificate valid for the host of the advertised
// address may register it, and a known store's address may only be moved
// by a certificate valid for its recorded host too. Stores then accept
// raft traffic claiming store N only from a certificate valid for store
// N's address, so no node can take another's store ID.
func (c *cluster) checkStoreIdentity(ctx context.Context, st *metapb.Store) error {
	if c.s.opts.TLS == nil {
		return nil
	}
	cert := grpcutil.PeerCertificate(ctx)
	if cert == nil {
		return status.Error(codes.Unauthenticated, "pd: registering a store needs a node certificate")
	}
	if !security.IsNodeCert(cert) {
		return status.Errorf(codes.PermissionDenied, "pd: certificate %q is a client certificate; only a node may register a store", cert.Subject.CommonName)
	}
	if err := security.CoversAddress(cert, st.GetAddress()); err != nil {
		return status.Errorf(codes.PermissionDenied, "pd: certificate %q may not register address %s: %v", cert.Subject.CommonName, st.GetAddress(), err)
	}
	c.mu.Lock()
	old, ok := c.stores[st.StoreId]
	c.mu.Unlock()
	if st.StoreId != 0 && ok && old.Store.GetAddress() != st.Address {
		if err := security.CoversAddress(cert, old.Store.GetAddress()); err != nil {
			return status.Errorf(codes.PermissionDenied, "pd: store %d is registered at %s; certificate %q may not move it: %v", st.StoreId, old.Store.GetAddress(), cert.Subject.CommonName, err)
		}
	}
	return nil
}
