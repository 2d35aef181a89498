package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
)

// Range is where Addr draws ports from: below the Linux ephemeral range.
const (
	RangeLow  = 20000
	RangeHigh = 32000
)

// Addr returns "127.0.0.1:port" for a port that was free a moment ago,
// drawn at random from [RangeLow, RangeHigh), falling back to a port from
// ":0" if 100 draws are all taken.
func Addr() (string, error) {
	for range 100 {
		port := RangeLow + rand.IntN(RangeHigh-RangeLow)
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			l.Close()
			return l.Addr().String(), nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
