package shell

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOptionsEnsureDefaults(t *testing.T) {
	o := Options{}.EnsureDefaults()
	require.Equal(t, FormatTable, o.Format)
	require.Equal(t, 10*time.Second, o.ConnectTimeout)
	require.Equal(t, os.Stdin, o.Stdin)
	require.Equal(t, os.Stdout, o.Stdout)
	require.Equal(t, os.Stderr, o.Stderr)
	// Upper case is accepted (as ParseFormat accepts it) and then used:
	// without the lower-casing the shell printed tables for "CSV".
	require.Equal(t, FormatCSV, Options{Format: "CSV"}.EnsureDefaults().Format)
	require.Equal(t, time.Second, Options{ConnectTimeout: time.Second}.EnsureDefaults().ConnectTimeout)
}

func TestOptionsValidate(t *testing.T) {
	pd := []string{"127.0.0.1:1"}
	require.NoError(t, Options{PD: pd}.EnsureDefaults().Validate())
	require.ErrorContains(t, Options{PD: pd, Format: "xml"}.EnsureDefaults().Validate(), `unknown format "xml"`)
	require.ErrorContains(t, Options{}.EnsureDefaults().Validate(), "no placement driver address")
	// Main refuses them before dialling.
	err := Main(context.Background(), Options{PD: pd, Format: "xml"})
	require.ErrorContains(t, err, `unknown format "xml"`)
	err = Main(context.Background(), Options{})
	require.ErrorContains(t, err, "no placement driver address")
}
