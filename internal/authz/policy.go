package authz

import (
	"bytes"
	"sync"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/pdpb"
)

// Policy is one version of the auth state, compiled for checks. It is
// immutable; a new version is a new Policy.
type Policy struct {
	state *pdpb.AuthState
	users map[string]*pdpb.AuthUser
	roles map[string]*pdpb.AuthRole
	perms sync.Map // user name → *perms, computed on first use
}

// perms is one user's effective grants: those of the role of its own name
// and of every role it is a member of.
type perms struct {
	cluster  bool
	tables   map[uint64]pdpb.AuthPermission
	prefixes []prefixGrant
}

type prefixGrant struct {
	prefix []byte
	level  pdpb.AuthPermission
}

// NewPolicy compiles st (nil: the empty state, version 0).
func NewPolicy(st *pdpb.AuthState) *Policy {
	if st == nil {
		st = &pdpb.AuthState{}
	}
	p := &Policy{state: st, users: map[string]*pdpb.AuthUser{}, roles: map[string]*pdpb.AuthRole{}}
	for _, u := range st.Users {
		p.users[u.Name] = u
	}
	for _, r := range st.Roles {
		p.roles[r.Name] = r
	}
	return p
}

// Version is the auth state's version.
func (p *Policy) Version() uint64 { return p.state.GetVersion() }

// State is the auth state the policy was compiled from (do not modify).
func (p *Policy) State() *pdpb.AuthState { return p.state }

func (p *Policy) permsOf(user string) *perms {
	if v, ok := p.perms.Load(user); ok {
		return v.(*perms)
	}
	out := &perms{cluster: user == RootUser, tables: map[uint64]pdpb.AuthPermission{}}
	roles := []string{user}
	if u := p.users[user]; u != nil {
		roles = append(roles, u.Roles...)
	}
	for _, name := range roles {
		r := p.roles[name]
		if r == nil {
			continue
		}
		for _, g := range r.Grants {
			out.add(g)
		}
	}
	v, _ := p.perms.LoadOrStore(user, out)
	return v.(*perms)
}

func (ps *perms) add(g *pdpb.AuthGrant) {
	switch on := g.On.(type) {
	case *pdpb.AuthGrant_Cluster:
		ps.cluster = ps.cluster || (on.Cluster && g.Permission == pdpb.AuthPermission_ADMIN)
	case *pdpb.AuthGrant_TableId:
		ps.tables[on.TableId] = max(ps.tables[on.TableId], g.Permission)
	case *pdpb.AuthGrant_KeyPrefix:
		ps.prefixes = append(ps.prefixes, prefixGrant{prefix: on.KeyPrefix, level: g.Permission})
	}
}

// levelOf is the permission a per-table class needs.
func levelOf(c Class) pdpb.AuthPermission {
	switch c {
	case DataRead:
		return pdpb.AuthPermission_READ
	case DataWrite:
		return pdpb.AuthPermission_WRITE
	default:
		return pdpb.AuthPermission_ADMIN
	}
}

// Check decides whether id may perform an operation of class c on
// targets (for the per-table classes). It returns nil, or a
// PermissionDenied error.
func (p *Policy) Check(id Identity, c Class, targets []Target) error {
	if c == Unclassified {
		return denied(id, "call an operation that has no classification (internal/authz/table.go)")
	}
	if id.Node || c == Public || c == Authenticated {
		return nil
	}
	ps := p.permsOf(id.User)
	switch {
	case c == Internal:
		return denied(id, "make node-internal calls (a node certificate is needed)")
	case ps.cluster:
		return nil
	case c == ClusterAdmin:
		return denied(id, "administer the cluster (needs the cluster admin grant)")
	}
	need := levelOf(c)
	if len(targets) == 0 {
		return denied(id, "%s: the request names no table", c)
	}
	for _, t := range targets {
		if !ps.covers(t, need) {
			return denied(id, "%s table %d (needs %s)", verbOf(c), t.TableID, need)
		}
	}
	return nil
}

func verbOf(c Class) string {
	switch c {
	case DataRead:
		return "read"
	case DataWrite:
		return "write"
	default:
		return "alter"
	}
}

func (ps *perms) covers(t Target, need pdpb.AuthPermission) bool {
	if ps.tables[t.TableID] >= need {
		return true
	}
	if t.TableID != RawTableID || t.Spans == nil {
		return false
	}
	for _, s := range t.Spans {
		if !ps.coversSpan(s, need) {
			return false
		}
	}
	return true
}

func (ps *perms) coversSpan(s Span, need pdpb.AuthPermission) bool {
	for _, g := range ps.prefixes {
		if g.level < need || !bytes.HasPrefix(s.Start, g.prefix) {
			continue
		}
		if s.End == nil {
			return true // one key
		}
		// A range stays inside the prefix if it ends at or before the
		// prefix's end (an empty End runs to the end of the table).
		pend := keys.PrefixEnd(g.prefix)
		if pend == nil || (len(s.End) > 0 && bytes.Compare(s.End, pend) <= 0) {
			return true
		}
	}
	return false
}

// User returns the user record of name (nil: none).
func (p *Policy) User(name string) *pdpb.AuthUser { return p.users[name] }
