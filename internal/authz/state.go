package authz

import (
	"bytes"
	"regexp"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/proto/pdpb"
)

// Changes to the auth state, applied by PD to a copy of the current state
// (Edit) before it writes the new version. Each returns a typed gRPC error
// a person understands.

// Bounds on the auth state, so that it stays one small metadata row.
const (
	MaxUsers          = 10000
	MaxRoles          = 10000
	MaxGrantsPerRole  = 1000
	MaxRolesPerUser   = 100
	MaxKeyPrefixBytes = 1024
	// MaxStateBytes bounds the whole marshalled state (one metadata cell,
	// fetched whole by every cache on a change).
	MaxStateBytes = 4 << 20
)

// nameRE is what a user or role name may be: the names client
// certificates may carry (internal/security), never "node".
var nameRE = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,62}$`)

// ValidName checks a user or role name.
func ValidName(what, name string) error {
	if !nameRE.MatchString(name) || name == security.NodeCN {
		return status.Errorf(codes.InvalidArgument, "%s name %q: want lower-case letters, digits, '_', '.', '-' (at most 63, not starting with a digit or '.', '-'), and not %q", what, name, security.NodeCN)
	}
	return nil
}

// Edit returns a copy of st (nil: empty) with f applied and the version
// advanced, or f's error.
func Edit(st *pdpb.AuthState, f func(*pdpb.AuthState) error) (*pdpb.AuthState, error) {
	next := &pdpb.AuthState{}
	if st != nil {
		next = proto.Clone(st).(*pdpb.AuthState)
	}
	if err := f(next); err != nil {
		return nil, err
	}
	next.Version++
	if n := proto.Size(next); n > MaxStateBytes {
		return nil, status.Errorf(codes.ResourceExhausted, "users, roles and grants would take %d bytes; at most %d", n, MaxStateBytes)
	}
	return next, nil
}

func findUser(st *pdpb.AuthState, name string) (int, *pdpb.AuthUser) {
	for i, u := range st.Users {
		if u.Name == name {
			return i, u
		}
	}
	return -1, nil
}

func findRole(st *pdpb.AuthState, name string) (int, *pdpb.AuthRole) {
	for i, r := range st.Roles {
		if r.Name == name {
			return i, r
		}
	}
	return -1, nil
}

// CreateUser adds a user; hash is a HashPassword result or "" (certificate
// login only).
func CreateUser(st *pdpb.AuthState, name, hash string) error {
	if err := ValidName("user", name); err != nil {
		return err
	}
	if _, u := findUser(st, name); u != nil {
		return status.Errorf(codes.AlreadyExists, "user %q already exists", name)
	}
	if len(st.Users) >= MaxUsers {
		return status.Errorf(codes.ResourceExhausted, "at most %d users", MaxUsers)
	}
	st.Users = append(st.Users, &pdpb.AuthUser{Name: name, PasswordHash: hash})
	return nil
}

// DropUser removes a user and the role of its name (its personal grants).
func DropUser(st *pdpb.AuthState, name string) error {
	if name == RootUser {
		return status.Errorf(codes.FailedPrecondition, "user %q is built in and cannot be dropped", RootUser)
	}
	i, u := findUser(st, name)
	if u == nil {
		return status.Errorf(codes.NotFound, "user %q does not exist", name)
	}
	st.Users = slices.Delete(st.Users, i, i+1)
	if j, r := findRole(st, name); r != nil {
		st.Roles = slices.Delete(st.Roles, j, j+1)
	}
	return nil
}

// SetPassword replaces a user's password hash ("": no password login).
func SetPassword(st *pdpb.AuthState, name, hash string) error {
	_, u := findUser(st, name)
	if u == nil {
		return status.Errorf(codes.NotFound, "user %q does not exist (create it with `shale ctl user add`)", name)
	}
	u.PasswordHash = hash
	return nil
}

// SetMySQLNative sets a user's mysql_native_password verifier
// (MySQLNativeHash; nil: none), alongside its password hash.
func SetMySQLNative(st *pdpb.AuthState, name string, native []byte) error {
	_, u := findUser(st, name)
	if u == nil {
		return status.Errorf(codes.NotFound, "user %q does not exist", name)
	}
	u.MysqlNativeHash = native
	return nil
}

// ValidGrant checks a grant as PD receives it (table resolved to an ID).
func ValidGrant(g *pdpb.AuthGrant, revoke bool) error {
	if g == nil {
		return status.Error(codes.InvalidArgument, "no grant given")
	}
	p := g.Permission
	if p < pdpb.AuthPermission_AUTH_PERMISSION_UNSPECIFIED || p > pdpb.AuthPermission_ADMIN || (p == 0 && !revoke) {
		return status.Errorf(codes.InvalidArgument, "permission %d: want read, write or admin", p)
	}
	switch on := g.On.(type) {
	case *pdpb.AuthGrant_TableId:
		if on.TableId == 0 {
			return status.Error(codes.InvalidArgument, "grant on table 0")
		}
	case *pdpb.AuthGrant_KeyPrefix:
		if len(on.KeyPrefix) > MaxKeyPrefixBytes {
			return status.Errorf(codes.InvalidArgument, "key prefix of %d bytes: at most %d", len(on.KeyPrefix), MaxKeyPrefixBytes)
		}
	case *pdpb.AuthGrant_Cluster:
		if !on.Cluster || (p != pdpb.AuthPermission_ADMIN && p != 0) {
			return status.Error(codes.InvalidArgument, "the cluster takes only the admin permission")
		}
	default:
		return status.Error(codes.InvalidArgument, "a grant needs a table, a key prefix or the cluster")
	}
	return nil
}

// sameObject reports whether two grants are on the same object.
func sameObject(a, b *pdpb.AuthGrant) bool {
	switch x := a.On.(type) {
	case *pdpb.AuthGrant_TableId:
		return b.GetTableId() == x.TableId
	case *pdpb.AuthGrant_KeyPrefix:
		y, ok := b.On.(*pdpb.AuthGrant_KeyPrefix)
		return ok && bytes.Equal(x.KeyPrefix, y.KeyPrefix)
	case *pdpb.AuthGrant_Cluster:
		return b.GetCluster()
	}
	return false
}

// GrantPermission gives role g (creating the role). A grant on an object
// the role already has a grant on replaces it.
func GrantPermission(st *pdpb.AuthState, role string, g *pdpb.AuthGrant) error {
	if err := ValidName("role", role); err != nil {
		return err
	}
	if err := ValidGrant(g, false); err != nil {
		return err
	}
	_, r := findRole(st, role)
	if r == nil {
		if len(st.Roles) >= MaxRoles {
			return status.Errorf(codes.ResourceExhausted, "at most %d roles", MaxRoles)
		}
		r = &pdpb.AuthRole{Name: role}
		st.Roles = append(st.Roles, r)
	}
	for i, old := range r.Grants {
		if sameObject(old, g) {
			r.Grants[i] = g
			return nil
		}
	}
	if len(r.Grants) >= MaxGrantsPerRole {
		return status.Errorf(codes.ResourceExhausted, "role %q: at most %d grants", role, MaxGrantsPerRole)
	}
	r.Grants = append(r.Grants, g)
	return nil
}

// RevokePermission removes role's grant on g's object (whatever its
// permission when g's is unspecified; else only that exact permission).
func RevokePermission(st *pdpb.AuthState, role string, g *pdpb.AuthGrant) error {
	if err := ValidGrant(g, true); err != nil {
		return err
	}
	_, r := findRole(st, role)
	if r != nil {
		for i, old := range r.Grants {
			if sameObject(old, g) && (g.Permission == 0 || g.Permission == old.Permission) {
				r.Grants = slices.Delete(r.Grants, i, i+1)
				return nil
			}
		}
	}
	return status.Errorf(codes.NotFound, "role %q has no such grant", role)
}

// AddMember makes user a member of role.
func AddMember(st *pdpb.AuthState, role, user string) error {
	if err := ValidName("role", role); err != nil {
		return err
	}
	_, u := findUser(st, user)
	if u == nil {
		return status.Errorf(codes.NotFound, "user %q does not exist (create it with `shale ctl user add`)", user)
	}
	if slices.Contains(u.Roles, role) {
		return nil
	}
	if len(u.Roles) >= MaxRolesPerUser {
		return status.Errorf(codes.ResourceExhausted, "user %q: at most %d roles", user, MaxRolesPerUser)
	}
	u.Roles = append(u.Roles, role)
	return nil
}

// RemoveMember removes user from role.
func RemoveMember(st *pdpb.AuthState, role, user string) error {
	_, u := findUser(st, user)
	if u == nil || !slices.Contains(u.Roles, role) {
		return status.Errorf(codes.NotFound, "user %q is not a member of role %q", user, role)
	}
	u.Roles = slices.DeleteFunc(u.Roles, func(r string) bool { return r == role })
	return nil
}

// Redacted is st without password hashes, and the names of the users that
// have one (ListAuth).
func Redacted(st *pdpb.AuthState) (*pdpb.AuthState, []string) {
	out := proto.Clone(st).(*pdpb.AuthState)
	var withPassword []string
	for _, u := range out.Users {
		if u.PasswordHash != "" {
			withPassword = append(withPassword, u.Name)
		}
		u.PasswordHash, u.MysqlNativeHash = "", nil
	}
	return out, withPassword
}
