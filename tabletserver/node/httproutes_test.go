package node

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/admission"
	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/metrics"
)

// Every route of a tablet server's status port is in internal/authz's HTTP table: the routes are
// registered by the function the server uses, on a recorder. A route added
// without a class fails here (and is refused at run time).
func TestEveryHTTPRouteIsClassified(t *testing.T) {
	rec := authz.NewRouteRecorder()
	adm, err := admission.New(admission.Options{})
	require.NoError(t, err)
	httpRoutes(rec, metrics.NewRegistry(), adm, func(http.ResponseWriter, *http.Request) {})
	require.NotEmpty(t, rec.Patterns)
	require.Empty(t, authz.UnclassifiedRoutes(rec.Patterns), "classify these routes in internal/authz/table.go")
}
