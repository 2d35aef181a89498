package importer

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testutils"
)

// TestRunsCompressOnlyWhenItHelps: a run of random values is written raw,
// one of repetitive values snappy-framed, and both merge back to the
// cells that went in, in order.
func TestRunsCompressOnlyWhenItHelps(t *testing.T) {
	seed := testutils.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 5))
	for _, tc := range []struct {
		name string
		val  func(i int) string
		raw  bool
	}{
		{"random", func(int) string {
			b := make([]byte, 200)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			return string(b)
		}, true},
		{"repetitive", func(i int) string { return strings.Repeat("value ", 30) + fmt.Sprint(i) }, false},
	} {
		dir := t.TempDir()
		s := newSorter(dir, "c", 1<<20)
		var want []string
		var rc recordCells
		rows := rng.Perm(3000) // distinct rows, out of order
		for i := 0; i < 3000; i++ {
			rc.reset()
			k := keys.CellKey(1, []byte(fmt.Sprintf("r%05d", rows[i])), "f", []byte("q"), 7)
			v := tc.val(i)
			require.NoError(t, rc.emit(k, []byte(v)))
			_, err := s.addRecord(&rc, uint64(i), uint32(i))
			require.NoError(t, err)
			want = append(want, string(k)+"="+v)
		}
		require.NoError(t, s.spill())
		for _, r := range s.runs {
			require.Equal(t, tc.raw, strings.HasSuffix(r, rawRunSuffix), "%s: run %s", tc.name, r)
		}
		var got []string
		for _, e := range mergedEntries(t, dir, s.runs) {
			got = append(got, string(e.key)+"="+string(e.value))
		}
		require.ElementsMatch(t, want, got, tc.name)
		require.IsIncreasing(t, got, tc.name)
	}
}

// TestSSTValuesCompress: ValuesCompress tells repetitive values from
// random ones, which is what makes a job stop compressing its SSTs.
func TestSSTValuesCompress(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	build := func(val func() []byte) *SSTBuilder {
		b := newSSTBuilder(true, 0)
		for i := 0; i < 2000; i++ {
			require.NoError(t, b.Add(keys.CellKey(1, []byte(fmt.Sprintf("r%05d", i)), "f", []byte("q"), 7), val(), 7))
		}
		_, err := b.Finish()
		require.NoError(t, err)
		return b
	}
	random := build(func() []byte {
		v := make([]byte, 300)
		for i := range v {
			v[i] = byte(' ' + rng.IntN(95)) // printable, as YCSB values
		}
		return v
	})
	require.False(t, random.ValuesCompress())
	require.True(t, build(func() []byte { return []byte(strings.Repeat("abc", 100)) }).ValuesCompress())
}
