package schedule

import (
	"fmt"
	"strings"

	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// Step is one stage of an Operator. A step is plain data: it judges its own
// completion from a later tablet report (IsFinished) and renders the command
// the tablet's leader must carry out (Command). Commands are resent on every
// report until the step is observed finished, so executing one must be
// idempotent at the leader (a change that is already applied is a no-op;
// the epoch in the command rejects commands built from stale state).
type Step interface {
	// IsFinished reports whether t (a report received after the step was
	// issued) shows the step done.
	IsFinished(t *Tablet) bool
	// Command is the heartbeat-response form of the step for tablet t.
	Command(t *Tablet) *pdpb.TabletCommand
	String() string
	// influence reports the step's effect on store tablet and leader counts
	// while it is unfinished, so schedulers do not overshoot.
	influence(add func(store uint64, tablets, leaders int))
	// confChanges is how much the step raises the tablet's conf version
	// (a joint change takes two: entering and leaving).
	confChanges() uint64
}

func (AddLearner) confChanges() uint64     { return 1 }
func (PromoteLearner) confChanges() uint64 { return 1 }
func (RemoveReplica) confChanges() uint64  { return 1 }
func (TransferLeader) confChanges() uint64 { return 0 }
func (Split) confChanges() uint64          { return 0 }
func (Merge) confChanges() uint64          { return 0 }

// confChanges implements Step: the store applies more than one change
// through joint consensus.
func (s ChangeReplicas) confChanges() uint64 {
	if len(s.Promote)+len(s.Remove) > 1 {
		return 2
	}
	return 1
}

// confApplied reports whether t's membership shows step s applied, finished
// or not: an added learner may still wait for its snapshot.
func confApplied(s Step, t *Tablet) bool {
	if al, ok := s.(AddLearner); ok {
		r, on := t.ReplicaOn(al.Store)
		return on && r.ID == al.ReplicaID
	}
	return s.IsFinished(t)
}

// AddLearner adds a non-voting replica, which the leader brings up to date
// with a snapshot. Finished when the replica is present and not pending.
type AddLearner struct {
	Store, ReplicaID uint64
	// Sender is the store expected to send the snapshot (the tablet's leader
	// when the step runs); it only feeds the per-store snapshot limit.
	Sender uint64
}

// PromoteLearner turns a caught-up learner into a voter.
type PromoteLearner struct{ Store, ReplicaID uint64 }

// RemoveReplica removes a replica (never the leader: operators transfer
// leadership away first).
type RemoveReplica struct{ Store, ReplicaID uint64 }

// ChangeReplicas is a joint-consensus change applied as one raft conf
// change: the second half of a move, promoting the new learner and removing
// the old replica in one TabletCommand.
type ChangeReplicas struct {
	Promote []PromoteLearner
	Remove  []RemoveReplica
}

// TransferLeader moves leadership to the replica on store To.
type TransferLeader struct{ From, To uint64 }

// Split splits the tablet at Key (empty: the leader picks the middle key).
// Finished when the tablet's Version has grown past FromVersion.
type Split struct {
	Key           []byte
	NewTabletID   uint64
	NewReplicaIDs []uint64 // one per replica, in Tablet.Replicas order when created
	FromVersion   uint64
}

// Merge absorbs the adjacent right tablet into this (left) one. Finished
// when the left tablet's Version has grown past FromVersion.
type Merge struct {
	Right       uint64
	FromVersion uint64
}

func command(t *Tablet) *pdpb.TabletCommand {
	return &pdpb.TabletCommand{
		TabletId: t.ID,
		Epoch:    &metapb.Epoch{Version: t.Version, ConfVersion: t.ConfVersion},
	}
}

func changeCmd(t *Tablet, changes ...*pdpb.TabletCommand_ChangeReplicas_Change) *pdpb.TabletCommand {
	cmd := command(t)
	cmd.Cmd = &pdpb.TabletCommand_ChangeReplicas_{ChangeReplicas: &pdpb.TabletCommand_ChangeReplicas{Changes: changes}}
	return cmd
}

func change(typ pdpb.TabletCommand_ChangeReplicas_Change_Type, store, replica uint64) *pdpb.TabletCommand_ChangeReplicas_Change {
	return &pdpb.TabletCommand_ChangeReplicas_Change{Type: typ, StoreId: store, ReplicaId: replica}
}

// IsFinished implements Step.
func (s AddLearner) IsFinished(t *Tablet) bool {
	r, ok := t.ReplicaOn(s.Store)
	return ok && r.ID == s.ReplicaID && !t.IsPending(r.ID)
}

// Command implements Step.
func (s AddLearner) Command(t *Tablet) *pdpb.TabletCommand {
	return changeCmd(t, change(pdpb.TabletCommand_ChangeReplicas_Change_ADD_LEARNER, s.Store, s.ReplicaID))
}

func (s AddLearner) String() string {
	return fmt.Sprintf("add learner %d on store %d", s.ReplicaID, s.Store)
}

func (s AddLearner) influence(add func(uint64, int, int)) { add(s.Store, 1, 0) }

// IsFinished implements Step.
func (s PromoteLearner) IsFinished(t *Tablet) bool {
	r, ok := t.ReplicaOn(s.Store)
	return ok && r.ID == s.ReplicaID && !r.Learner
}

// Command implements Step.
func (s PromoteLearner) Command(t *Tablet) *pdpb.TabletCommand {
	return changeCmd(t, change(pdpb.TabletCommand_ChangeReplicas_Change_PROMOTE_LEARNER, s.Store, s.ReplicaID))
}

func (s PromoteLearner) String() string {
	return fmt.Sprintf("promote learner %d on store %d", s.ReplicaID, s.Store)
}

func (s PromoteLearner) influence(func(uint64, int, int)) {}

// IsFinished implements Step.
func (s RemoveReplica) IsFinished(t *Tablet) bool {
	r, ok := t.ReplicaOn(s.Store)
	return !ok || r.ID != s.ReplicaID
}

// Command implements Step.
func (s RemoveReplica) Command(t *Tablet) *pdpb.TabletCommand {
	return changeCmd(t, change(pdpb.TabletCommand_ChangeReplicas_Change_REMOVE, s.Store, s.ReplicaID))
}

func (s RemoveReplica) String() string {
	return fmt.Sprintf("remove replica %d on store %d", s.ReplicaID, s.Store)
}

func (s RemoveReplica) influence(add func(uint64, int, int)) { add(s.Store, -1, 0) }

// IsFinished implements Step.
func (s ChangeReplicas) IsFinished(t *Tablet) bool {
	for _, p := range s.Promote {
		if !p.IsFinished(t) {
			return false
		}
	}
	for _, r := range s.Remove {
		if !r.IsFinished(t) {
			return false
		}
	}
	return true
}

// Command implements Step: one ChangeReplicas with every change not yet
// visible in t (all of them, normally: joint consensus applies them
// together).
func (s ChangeReplicas) Command(t *Tablet) *pdpb.TabletCommand {
	var cs []*pdpb.TabletCommand_ChangeReplicas_Change
	for _, p := range s.Promote {
		if !p.IsFinished(t) {
			cs = append(cs, change(pdpb.TabletCommand_ChangeReplicas_Change_PROMOTE_LEARNER, p.Store, p.ReplicaID))
		}
	}
	for _, r := range s.Remove {
		if !r.IsFinished(t) {
			cs = append(cs, change(pdpb.TabletCommand_ChangeReplicas_Change_REMOVE, r.Store, r.ReplicaID))
		}
	}
	return changeCmd(t, cs...)
}

func (s ChangeReplicas) String() string {
	var parts []string
	for _, p := range s.Promote {
		parts = append(parts, p.String())
	}
	for _, r := range s.Remove {
		parts = append(parts, r.String())
	}
	return "joint change: " + strings.Join(parts, ", ")
}

func (s ChangeReplicas) influence(add func(uint64, int, int)) {
	for _, r := range s.Remove {
		r.influence(add)
	}
}

// IsFinished implements Step.
func (s TransferLeader) IsFinished(t *Tablet) bool { return t.LeaderStoreID == s.To }

// Command implements Step.
func (s TransferLeader) Command(t *Tablet) *pdpb.TabletCommand {
	cmd := command(t)
	cmd.Cmd = &pdpb.TabletCommand_TransferLeader_{TransferLeader: &pdpb.TabletCommand_TransferLeader{ToStoreId: s.To}}
	return cmd
}

func (s TransferLeader) String() string {
	return fmt.Sprintf("transfer leader from store %d to store %d", s.From, s.To)
}

func (s TransferLeader) influence(add func(uint64, int, int)) {
	add(s.From, 0, -1)
	add(s.To, 0, 1)
}

// IsFinished implements Step.
func (s Split) IsFinished(t *Tablet) bool { return t.Version > s.FromVersion }

// Command implements Step.
func (s Split) Command(t *Tablet) *pdpb.TabletCommand {
	cmd := command(t)
	cmd.Cmd = &pdpb.TabletCommand_Split_{Split: &pdpb.TabletCommand_Split{
		SplitKey:      s.Key,
		NewTabletId:   s.NewTabletID,
		NewReplicaIds: s.NewReplicaIDs,
	}}
	return cmd
}

func (s Split) String() string {
	if len(s.Key) == 0 {
		return fmt.Sprintf("split at middle key into new tablet %d", s.NewTabletID)
	}
	return fmt.Sprintf("split at key %q into new tablet %d", s.Key, s.NewTabletID)
}

// Split and merge change every replica store's count alike; they do not
// disturb balance decisions.
func (s Split) influence(func(uint64, int, int)) {}

// IsFinished implements Step.
func (s Merge) IsFinished(t *Tablet) bool { return t.Version > s.FromVersion }

// Command implements Step.
func (s Merge) Command(t *Tablet) *pdpb.TabletCommand {
	cmd := command(t)
	cmd.Cmd = &pdpb.TabletCommand_Merge_{Merge: &pdpb.TabletCommand_Merge{RightTabletId: s.Right}}
	return cmd
}

func (s Merge) String() string { return fmt.Sprintf("merge right tablet %d", s.Right) }

func (s Merge) influence(func(uint64, int, int)) {}
