package testutils

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// SeedEnv names the environment variable every randomized test reads its
// seed from; unset, the seed is random. Either way the test log says which
// seed ran and how to replay it.
const SeedEnv = "SHALE_TEST_SEED"

// Seed returns the test's seed: SHALE_TEST_SEED when set, a random one
// otherwise. It logs the seed with the command line that replays it and
// fails the test when SHALE_TEST_SEED is not a number.
func Seed(t testing.TB) uint64 {
	t.Helper()
	return seedOr(t, rand.Uint64())
}

// SeedOr is Seed for a test that runs a fixed seed unless SHALE_TEST_SEED
// says otherwise (a deterministic simulation whose expectations were
// tuned on that seed).
func SeedOr(t testing.TB, def uint64) uint64 {
	t.Helper()
	return seedOr(t, def)
}

func seedOr(t testing.TB, def uint64) uint64 {
	t.Helper()
	seed := def
	if s := os.Getenv(SeedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want an unsigned decimal integer: %v", SeedEnv, s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay: %s=%d go test -run '^%s$')", seed, SeedEnv, seed, t.Name())
	return seed
}

// Rand returns a generator seeded by Seed; stream separates generators a
// test draws from the same seed.
func Rand(t testing.TB, stream uint64) *rand.Rand {
	t.Helper()
	return rand.New(rand.NewPCG(Seed(t), stream))
}
