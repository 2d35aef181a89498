package transport

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/proto/transportpb"
)

// ConsistencyHandler is the optional part of a Handler that serves
// consistency checks (tabletserver/store/consistency.go). A Handler
// without it answers Unimplemented.
type ConsistencyHandler interface {
	// CollectChecksum returns this store's result of a check, waiting
	// (bounded by ctx) until it is computed.
	CollectChecksum(ctx context.Context, req *transportpb.CollectChecksumRequest) (*transportpb.CollectChecksumResponse, error)
	// ReportBadReplica is a replica's report, to its leader, that its data
	// is corrupt.
	ReportBadReplica(ctx context.Context, req *transportpb.ReportBadReplicaRequest) error
}

func (s *server) consistency() (ConsistencyHandler, error) {
	if s.t.closed.Load() {
		return nil, status.Error(codes.Unavailable, "transport: receiver closed")
	}
	h, ok := s.t.handler.(ConsistencyHandler)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "transport: this store does not serve consistency checks")
	}
	return h, nil
}

// CollectChecksum serves a leader collecting a check's results.
func (s *server) CollectChecksum(ctx context.Context, req *transportpb.CollectChecksumRequest) (*transportpb.CollectChecksumResponse, error) {
	who, err := s.t.newPeerIdentity(ctx)
	if err != nil {
		return nil, err
	}
	if err := who.checkStore(req.FromStore); err != nil {
		return nil, err
	}
	h, err := s.consistency()
	if err != nil {
		return nil, err
	}
	return h.CollectChecksum(ctx, req)
}

// ReportBadReplica serves a replica reporting its own corruption.
func (s *server) ReportBadReplica(ctx context.Context, req *transportpb.ReportBadReplicaRequest) (*transportpb.ReportBadReplicaResponse, error) {
	who, err := s.t.newPeerIdentity(ctx)
	if err != nil {
		return nil, err
	}
	if err := who.checkStore(req.FromStore); err != nil {
		return nil, err
	}
	h, err := s.consistency()
	if err != nil {
		return nil, err
	}
	if err := h.ReportBadReplica(ctx, req); err != nil {
		return nil, err
	}
	return &transportpb.ReportBadReplicaResponse{}, nil
}

// Client returns a client of storeID's transport service, on the
// connection the raft stream uses.
func (t *Transport) Client(storeID uint64) (transportpb.RaftTransportClient, error) {
	cc, err := t.conn(storeID)
	if err != nil {
		return nil, err
	}
	return transportpb.NewRaftTransportClient(cc), nil
}
