// Package size parses the byte sizes that the benchmarks and bench/compare
// take on their command lines, written as the Node scripts write them.
package size

import (
	"fmt"
	"strconv"
	"strings"
)

// Parse parses "16K", "256M", "1G" (powers of 1024, with an optional "B" or
// "iB") or a plain positive number of bytes.
func Parse(s string) (int64, error) {
	mult := int64(1)
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(s), "B"), "I")
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}
