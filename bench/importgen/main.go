// Command importgen writes YCSB-shaped records as CSV for `shale import`:
// a header "key,field0,...", then one line per record with the row key
// `shale bench ycsb load` gives record i (bench/ycsb Workload.KeyName) and
// fieldcount random printable fields of fieldlength bytes, so an import and
// a YCSB load of the same recordcount write the same rows.
//
//	go run ./bench/importgen -records 1000000 > ycsb.csv   # about 1 GiB
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"

	"github.com/shaledb/shale/bench/ycsb"
)

func main() {
	records := flag.Int64("records", 1_000_000, "records to write")
	fields := flag.Int("fieldcount", 10, "fields per record")
	length := flag.Int("fieldlength", 100, "bytes per field")
	seed := flag.Uint64("seed", 1, "random seed of the field values")
	flag.Parse()
	p := ycsb.NewProperties()
	p.Set("recordcount", strconv.FormatInt(*records, 10))
	p.Set("fieldcount", strconv.Itoa(*fields))
	p.Set("fieldlength", strconv.Itoa(*length))
	w, err := ycsb.NewWorkload(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, "importgen:", err)
		os.Exit(2)
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer out.Flush()
	out.WriteString("key")
	for f := 0; f < *fields; f++ {
		fmt.Fprintf(out, ",field%d", f)
	}
	out.WriteByte('\n')
	rng := rand.New(rand.NewPCG(*seed, 0))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	val := make([]byte, *length)
	for i := int64(0); i < *records; i++ {
		out.WriteString(w.KeyName(i))
		for f := 0; f < *fields; f++ {
			for j := range val {
				val[j] = letters[rng.IntN(len(letters))]
			}
			out.WriteByte(',')
			out.Write(val)
		}
		if err := out.WriteByte('\n'); err != nil {
			fmt.Fprintln(os.Stderr, "importgen:", err)
			os.Exit(1)
		}
	}
}
