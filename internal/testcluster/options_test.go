package testcluster

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOptionsEnsureDefaults(t *testing.T) {
	o := Options{}.EnsureDefaults()
	require.Equal(t, 1, o.PDMembers)
	require.Equal(t, 3, o.Stores)
	o = Options{PDMembers: 3, Stores: 1}.EnsureDefaults()
	require.Equal(t, 3, o.PDMembers)
	require.Equal(t, 1, o.Stores)
}

func TestOptionsValidate(t *testing.T) {
	require.NoError(t, Options{}.EnsureDefaults().Validate())
	require.ErrorContains(t, Options{PDMembers: -1}.EnsureDefaults().Validate(), "Options.PDMembers must not be negative, got -1")
	require.ErrorContains(t, Options{Stores: -2}.EnsureDefaults().Validate(), "Options.Stores must not be negative, got -2")
}
