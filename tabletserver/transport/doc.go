// Package transport carries raft traffic between tablet servers ("stores").
//
// A store hosts many tablets, each one an etcd-raft group. Raft messages are
// addressed to a (store, tablet) pair, but the transport only knows stores:
// it moves opaque transportpb.RaftMessage values from one store to another
// and leaves routing to a tablet to the receiving store's Handler.
//
// # Raft messages
//
// Send never blocks on the network. It appends to a bounded per-destination
// queue (Options.SendQueueLen) and returns. One goroutine per destination
// store, not per tablet, drains that queue: everything queued when it wakes up
// goes out as a single RaftMessageBatch on one long-lived client-streaming
// Send RPC. Messages from one caller to one destination are therefore
// delivered in the order they were passed to Send (unless a testing filter
// delays some of them), but nothing is retried: raft tolerates loss and
// reordering, and retransmits what matters.
//
// SendControl does the same on a second queue, goroutine and stream per
// destination (the control lane), for small messages that must not wait
// behind a large one on the data lane: the store sends MsgApps with Send
// and heartbeats, votes and responses with SendControl, so a heartbeat is
// never stuck behind a multi-MiB entry for longer than an election
// timeout. Order holds within a lane, not across lanes.
//
// When a message cannot be delivered (the queue overflowed, the destination
// could not be resolved or dialed, or the stream broke), the transport drops
// it and calls Handler.ReportUnreachable for the destination, from the
// destination's goroutine and never from inside Send. It also tells a
// CachingResolver the destination's address failed, so a store restarted
// on another address is found there. The goroutine then re-opens the
// stream with capped exponential backoff. An empty Send is a
// store-level liveness ping: the receiver sees an empty batch (or a
// non-empty one, if messages were queued at the same time).
// Every control-lane batch is marked control_lane and carries
// Options.RaftBusy() as raft_busy, so a ping sent while the sender's raft
// loop is stuck in a long write tells the receiver, promptly, that the
// store is alive but busy.
//
// # Snapshots
//
// SendSnapshot streams a tablet's key/value pairs on a separate
// client-streaming Snapshot RPC over the same connection. The pairs are
// encoded as a byte stream of (uvarint len, key, uvarint len, value) records
// and cut into chunks of at most Options.SnapshotChunkBytes uncompressed
// bytes; a record may span chunks, so a large value never produces an
// oversized gRPC message. Each chunk carries the crc32c (Castagnoli) of its
// uncompressed bytes and is snappy-compressed. The first chunk carries the
// SnapshotHeader and the last one has final=true. Outgoing compressed bytes
// of all snapshots share one rate limiter (Options.SnapshotBytesPerSec).
//
// The receiver verifies every chunk before the Handler sees its pairs: a crc
// or snappy mismatch fails the stream with codes.DataLoss, malformed framing
// (missing header, bad varint, truncated record, no final chunk) with
// codes.InvalidArgument. Those errors win over whatever the Handler returns.
// SendSnapshot returns only after the receiver's HandleSnapshot has returned,
// and returns its error.
//
// # Identity
//
// With Options.TLS set, streams go out over mutual TLS and inbound ones
// are bound to their connection's certificate (identity.go): raft traffic
// comes only from node certificates, and a batch or snapshot claiming
// store N only from a certificate valid for the host of N's address as
// the Resolver knows it; anything else fails the stream with
// PermissionDenied and is logged. Without TLS every claim is believed.
//
// # Usage
//
//	t, err := transport.New(transport.Options{StoreID: 1, Resolver: r}, store)
//	srv := grpc.NewServer(grpcutil.ServerOptions(nil)...)
//	t.Register(srv)
//	go srv.Serve(lis)
//	...
//	t.Send(2, rd.Messages)            // from the Ready loop; never blocks
//	err := t.SendSnapshot(ctx, 2, hdr, func(emit func(k, v []byte) error) error {
//		for it.First(); it.Valid(); it.Next() {
//			if err := emit(it.Key(), it.Value()); err != nil {
//				return err
//			}
//		}
//		return it.Error()
//	})
//	...
//	t.Close() // before srv.Stop, or after: either order is fine
//
// The Handler's callbacks run on transport goroutines: HandleRaftBatch on the
// gRPC stream goroutine of the sender, ReportUnreachable on the destination's
// send goroutine. They must not block for long and must not call Close.
package transport
