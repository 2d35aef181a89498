// Package testutils holds what every test shares: SucceedsSoon, the one way
// a test waits for a condition, and Seed, the one way a randomized test
// picks, prints and replays its seed (SHALE_TEST_SEED).
package testutils
