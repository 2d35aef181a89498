package node

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/quota"
	"github.com/shaledb/shale/internal/retry"
	"github.com/shaledb/shale/proto/kvpb"
)

// quotaGate enforces the store's quota shares (internal/quota, from PD's
// heartbeat answers) on the foreground data RPCs; bulk import and export
// are background work, left to admission control.
type quotaGate struct{ l *quota.Limiter }

// quotaWrites maps each limited method to whether it writes.
var quotaWrites = map[string]bool{
	kvpb.Tablet_Get_FullMethodName:                false,
	kvpb.Tablet_Scan_FullMethodName:               false,
	kvpb.Tablet_MutateRow_FullMethodName:          true,
	kvpb.Tablet_CheckAndMutateRow_FullMethodName:  true,
	kvpb.Tablet_ReadModifyWriteRow_FullMethodName: true,
	kvpb.Tablet_BatchMutate_FullMethodName:        true,
}

// admit charges req to its table's and its user's buckets.
func (q quotaGate) admit(ctx context.Context, req any, write bool) (quota.Ticket, error) {
	m, ok := req.(interface {
		proto.Message
		GetTableId() uint64
	})
	if !ok || q.l.Len() == 0 { // no quota: no identity lookup, no sizing

		return quota.Ticket{}, nil
	}
	// A user certificate's name, or the user a gateway's node identity
	// serves; no identity without TLS: table quotas only.
	user := authz.EffectiveUser(ctx)
	size := 0
	if write {
		size = proto.Size(m)
	}
	return q.l.Admit(m.GetTableId(), user, write, size)
}

// refund: the request was refused before it was served (another replica
// leads, the route is stale), so its tokens go back.
func refund(err error) bool {
	act := retry.Classify(err)
	return err != nil && (act == retry.RefreshRoute || act == retry.RetryElsewhere)
}

func msgSize(m any) int {
	if pm, ok := m.(proto.Message); ok {
		return proto.Size(pm)
	}
	return 0
}

func (q quotaGate) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	write, limited := quotaWrites[info.FullMethod]
	if !limited {
		return h(ctx, req)
	}
	t, err := q.admit(ctx, req, write)
	if err != nil {
		return nil, err
	}
	resp, err := h(ctx, req)
	t.Done(msgSize(resp), refund(err))
	return resp, err
}

func (q quotaGate) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	write, limited := quotaWrites[info.FullMethod]
	if !limited {
		return h(srv, ss)
	}
	qs := &quotaStream{ServerStream: ss, q: q, write: write}
	err := h(srv, qs)
	if qs.admitted && !qs.sent {
		qs.t.Done(0, refund(err))
	}
	return err
}

// quotaStream admits a stream at its first request (which names the
// table) and charges each response's bytes as it is sent.
type quotaStream struct {
	grpc.ServerStream
	q              quotaGate
	write          bool
	t              quota.Ticket
	admitted, sent bool
}

func (s *quotaStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil || s.admitted {
		return err
	}
	t, err := s.q.admit(s.Context(), m, s.write)
	if err != nil {
		return err
	}
	s.t, s.admitted = t, true
	return nil
}

func (s *quotaStream) SendMsg(m any) error {
	s.sent = true
	s.t.Done(msgSize(m), false)
	return s.ServerStream.SendMsg(m)
}
