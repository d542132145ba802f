package size

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParse(t *testing.T) {
	tests := []struct {
		give string
		want int64
	}{
		{"16", 16},
		{"16K", 16 << 10},
		{"256MiB", 256 << 20},
		{"1g", 1 << 30},
		{"2GB", 2 << 30},
	}
	for _, tt := range tests {
		got, err := Parse(tt.give)
		assert.NoError(t, err, "Parse(%q)", tt.give)
		assert.Equal(t, tt.want, got, "Parse(%q)", tt.give)
	}
	for _, bad := range []string{"", "K", "-1", "0", "1.5M", "ten"} {
		_, err := Parse(bad)
		assert.Error(t, err, "Parse(%q)", bad)
	}
}
