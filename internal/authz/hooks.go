package authz

import (
	"errors"
	"net/http"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/proto/pdpb"
)

// HTTP wraps mux: every request is checked against the HTTP table by the
// pattern mux routes it to, with the identity of its TLS certificate. A
// route missing from the table is refused (403) to all but nodes. An
// unauthenticated request gets 401, a refused one 403.
func (a *Authorizer) HTTP(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.o.Mode != Secure {
			mux.ServeHTTP(w, r)
			return
		}
		_, pattern := mux.Handler(r)
		c := HTTP[pattern]
		if pattern == "" {
			c = Public // no route: the mux answers 404 or 405
		}
		if c != Public {
			id, err := FromTLS(r.TLS)
			if err == nil {
				err = a.Check(id, c, nil)
			}
			if err != nil {
				http.Error(w, status.Convert(err).Message(), httpStatus(err))
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

func httpStatus(err error) int {
	switch status.Code(err) {
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	default:
		return http.StatusServiceUnavailable
	}
}

// Authenticate checks a password login (the SQL endpoint, over TLS)
// against the user's stored hash. The answer does not say whether the
// user exists. In Insecure mode nothing is checked.
func (a *Authorizer) Authenticate(user, password string) (Identity, error) {
	if a.o.Mode != Secure {
		return Identity{User: user}, nil
	}
	p, err := a.o.Policies.Policy()
	if err != nil {
		return Identity{}, err
	}
	u := p.User(user)
	if u == nil {
		// Spend the same time as a real check: no user enumeration.
		_ = CheckPassword(decoyHash(), password)
		return Identity{}, errUnauthenticated("%v", ErrBadPassword)
	}
	if err := CheckPassword(u.PasswordHash, password); err != nil {
		if errors.Is(err, ErrBadPassword) {
			return Identity{}, errUnauthenticated("%v", ErrBadPassword)
		}
		return Identity{}, errUnauthenticated("user %q: %v", user, err)
	}
	return Identity{User: user}, nil
}

// User is the record of a user (with its password hashes) from the current
// policy, nil if there is none: for the SQL endpoint, which checks MySQL's
// challenge answers itself. In Insecure mode there are no users.
func (a *Authorizer) User(name string) (*pdpb.AuthUser, error) {
	if a.o.Mode != Secure {
		return nil, nil
	}
	p, err := a.o.Policies.Policy()
	if err != nil {
		return nil, err
	}
	return p.User(name), nil
}

// decoyHash is checked for unknown users (made on first use).
var decoyHash = sync.OnceValue(func() string {
	h, err := HashPassword("decoy password, never used")
	if err != nil {
		return "" // CheckPassword then fails at once
	}
	return h
})

// CheckThrift decides a Thrift gateway call (method is its wire name) by
// id on tableIDs (the table the call names; none for the other classes).
func (a *Authorizer) CheckThrift(id Identity, method string, tableIDs ...uint64) error {
	return a.checkNamed(id, Thrift[method], tableIDs)
}

// CheckSQL decides a SQL statement (its kind as sql-lite names it, e.g.
// "SELECT") by id on every table it reads or writes. A statement that
// names no (existing) table, such as SELECT 1, needs only an identity.
func (a *Authorizer) CheckSQL(id Identity, kind string, tableIDs ...uint64) error {
	c := SQL[kind]
	if c.needsTarget() && len(tableIDs) == 0 {
		c = Authenticated
	}
	return a.checkNamed(id, c, tableIDs)
}

func (a *Authorizer) checkNamed(id Identity, c Class, tableIDs []uint64) error {
	var targets []Target
	if c.needsTarget() {
		for _, t := range tableIDs {
			targets = append(targets, Target{TableID: t})
		}
	}
	return a.Check(id, c, targets)
}
