package authz

import (
	"net/http"
	"slices"
)

// Registrar is what registers HTTP routes: an *http.ServeMux, or a
// RouteRecorder in tests. The servers register their routes through one
// function taking a Registrar, so that a test can list them.
type Registrar interface {
	Handle(pattern string, h http.Handler)
	HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request))
}

// RouteRecorder is a ServeMux that remembers the patterns registered on
// it (a ServeMux cannot list them).
type RouteRecorder struct {
	*http.ServeMux
	Patterns []string
}

// NewRouteRecorder returns an empty recorder.
func NewRouteRecorder() *RouteRecorder { return &RouteRecorder{ServeMux: http.NewServeMux()} }

// Handle registers and records pattern.
func (r *RouteRecorder) Handle(pattern string, h http.Handler) {
	r.Patterns = append(r.Patterns, pattern)
	r.ServeMux.Handle(pattern, h)
}

// HandleFunc registers and records pattern.
func (r *RouteRecorder) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	r.Patterns = append(r.Patterns, pattern)
	r.ServeMux.HandleFunc(pattern, f)
}

// UnclassifiedRoutes returns the patterns missing from the HTTP table,
// sorted (Authorizer.HTTP refuses them to all but nodes).
func UnclassifiedRoutes(patterns []string) []string {
	var out []string
	for _, p := range patterns {
		if _, ok := HTTP[p]; !ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}
