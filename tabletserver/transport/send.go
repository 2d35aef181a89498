package transport

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/retry"
	"github.com/shaledb/shale/proto/transportpb"
)

const (
	// maxBatchBytes caps the payload of one RaftMessageBatch (at least one
	// message is always sent), so a long queue of large MsgApps does not turn
	// into one message above the receiver's gRPC limit.
	maxBatchBytes = 1 << 20
	// minBackoff and maxBackoff bound the wait before re-opening a failed
	// raft stream; the wait doubles on every consecutive failure.
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
)

// Send enqueues msgs for toStore and returns immediately; it never blocks on
// the network. An empty msgs sends a liveness ping (on the control lane).
// Messages must not be modified after Send. Send after Close is a no-op.
func (t *Transport) Send(toStore uint64, msgs []*transportpb.RaftMessage) {
	t.send(toStore, msgs, len(msgs) == 0)
}

// SendControl is Send on a second queue and stream to toStore, for small
// messages that must not wait behind large ones queued by Send: raft
// heartbeats, votes and responses. One MsgApp carrying an ingested SST is
// many MiB and can take longer to cross than an election timeout on a
// loaded machine; a heartbeat queued behind it would let the followers
// call an election that discards the entry. Order is kept within a lane,
// not between the two.
func (t *Transport) SendControl(toStore uint64, msgs []*transportpb.RaftMessage) {
	t.send(toStore, msgs, true)
}

func (t *Transport) send(toStore uint64, msgs []*transportpb.RaftMessage, control bool) {
	if t.closed.Load() {
		return
	}
	p := t.peer(peerKey{store: toStore, control: control})
	if p == nil {
		return
	}
	if len(msgs) == 0 {
		// A liveness ping: a partition must stop it like any message.
		if k := t.opts.Knobs; k != nil && k.SendFilter != nil {
			if drop, _ := k.SendFilter(t.opts.StoreID, toStore, nil); drop {
				return
			}
		}
		p.enqueue(nil, true)
		return
	}
	if k := t.opts.Knobs; k != nil && k.SendFilter != nil {
		kept := make([]*transportpb.RaftMessage, 0, len(msgs))
		for _, m := range msgs {
			drop, delay := k.SendFilter(t.opts.StoreID, toStore, m)
			switch {
			case drop:
			case delay > 0:
				time.AfterFunc(delay, func() { p.enqueue([]*transportpb.RaftMessage{m}, false) })
			default:
				kept = append(kept, m)
			}
		}
		if len(kept) == 0 {
			return
		}
		msgs = kept
	}
	p.enqueue(msgs, false)
}

// peerKey names one outbound lane: a destination store and whether it is
// the control lane (SendControl) or the data lane (Send).
type peerKey struct {
	store   uint64
	control bool
}

// peer returns the send queue for k, starting its goroutine on first use.
// It returns nil after Close.
func (t *Transport) peer(k peerKey) *peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return nil
	}
	p := t.mu.peers[k]
	if p == nil {
		p = newPeer(t, k)
		t.mu.peers[k] = p
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			p.run(t.ctx)
		}()
	}
	return p
}

// peer is one outbound lane to a destination store, drained by one
// goroutine (run) that owns the lane's raft stream.
type peer struct {
	t       *Transport
	to      uint64
	control bool
	log     *slog.Logger
	// signal has capacity one; enqueue fills it to wake run.
	signal chan struct{}

	mu struct {
		sync.Mutex
		msgs []*transportpb.RaftMessage
		// ping asks for a batch even if msgs is empty.
		ping bool
		// dropped counts messages lost to queue overflow and not yet
		// reported.
		dropped int
	}
}

func newPeer(t *Transport, k peerKey) *peer {
	return &peer{
		t:       t,
		to:      k.store,
		control: k.control,
		log:     t.log.With("peer", k.store, "control", k.control),
		signal:  make(chan struct{}, 1),
	}
}

func (p *peer) enqueue(msgs []*transportpb.RaftMessage, ping bool) {
	if p.t.closed.Load() {
		return
	}
	p.mu.Lock()
	p.mu.ping = p.mu.ping || ping
	room := p.t.opts.SendQueueLen - len(p.mu.msgs)
	if room < 0 {
		room = 0
	}
	if len(msgs) > room {
		p.mu.dropped += len(msgs) - room
		msgs = msgs[:room]
	}
	p.mu.msgs = append(p.mu.msgs, msgs...)
	p.mu.Unlock()
	p.wake()
}

func (p *peer) wake() {
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

// take removes the next batch from the queue. more reports whether messages
// remain queued; dropped is the number of overflowed messages since the last
// call.
func (p *peer) take() (msgs []*transportpb.RaftMessage, send bool, dropped int, more bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, size := 0, 0
	for n < len(p.mu.msgs) && size < maxBatchBytes {
		size += len(p.mu.msgs[n].Message) + 16
		n++
	}
	if n == len(p.mu.msgs) {
		msgs, p.mu.msgs = p.mu.msgs, nil
	} else {
		msgs = append([]*transportpb.RaftMessage(nil), p.mu.msgs[:n]...)
		p.mu.msgs = append(p.mu.msgs[:0:0], p.mu.msgs[n:]...)
		more = true
	}
	send = len(msgs) > 0 || p.mu.ping
	p.mu.ping = false
	dropped, p.mu.dropped = p.mu.dropped, 0
	return msgs, send, dropped, more
}

type sendStream = grpc.ClientStreamingClient[transportpb.RaftMessageBatch, transportpb.SendResponse]

// run drains the queue until ctx is canceled, keeping one Send stream open.
func (p *peer) run(ctx context.Context) {
	var (
		stream       sendStream
		cancelStream context.CancelFunc
		bo           = retry.NewExponential(minBackoff, maxBackoff)
		failing      bool
	)
	defer func() {
		if cancelStream != nil {
			cancelStream()
		}
	}()
	fail := func(err error) {
		if cancelStream != nil {
			cancelStream()
			stream, cancelStream = nil, nil
		}
		if ctx.Err() != nil {
			return
		}
		if !failing {
			p.log.Warn("raft transport to store failing", "err", err)
			failing = true
		} else {
			p.log.Debug("raft transport to store still failing", "err", err)
		}
		p.t.handler.ReportUnreachable(p.to)
		p.t.invalidate(p.to)
		_ = bo.Wait(ctx, 0) // ctx ended: the loop returns
	}

	for {
		select {
		case <-ctx.Done():
			return
		case <-p.signal:
		}
		msgs, send, dropped, more := p.take()
		if more {
			p.wake()
		}
		if dropped > 0 {
			p.log.Debug("raft send queue overflow", "dropped", dropped)
			p.t.handler.ReportUnreachable(p.to)
		}
		if !send {
			continue
		}
		if stream == nil {
			var err error
			stream, cancelStream, err = p.open(ctx)
			if err != nil {
				fail(err)
				continue
			}
		}
		b := &transportpb.RaftMessageBatch{FromStore: p.t.opts.StoreID, Messages: msgs}
		if p.control {
			// Stamped at send time on the lane of small messages, so a
			// ping sent during a stall says so and arrives promptly.
			b.ControlLane = true
			if busy := p.t.opts.RaftBusy; busy != nil {
				b.RaftBusy = busy()
			}
		}
		if err := stream.Send(b); err != nil {
			if errors.Is(err, io.EOF) {
				// The stream is gone; the real reason is its status.
				err = stream.RecvMsg(new(transportpb.SendResponse))
			}
			fail(err)
			continue
		}
		if failing {
			p.log.Info("raft transport to store recovered")
			failing = false
		}
		bo.Reset()
	}
}

// open resolves the destination and opens a Send stream to it within
// DialTimeout.
func (p *peer) open(ctx context.Context) (sendStream, context.CancelFunc, error) {
	cc, err := p.t.conn(p.to)
	if err != nil {
		return nil, nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(p.t.opts.DialTimeout, cancel)
	stream, err := transportpb.NewRaftTransportClient(cc).Send(sctx)
	if !timer.Stop() && err == nil {
		err = status.Error(codes.DeadlineExceeded, "transport: opening raft stream timed out")
	}
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return stream, cancel, nil
}
