// Package plain is the control module of gohook's gap fixture: it reads a file, sorts, formats and
// uses sync.Once, none of which is a linkname call, a capability function value, a wrapper of an
// uncharged system call or a system call number. `gohook inspect` must name no gap for it.
package plain

import (
	"os"
	"sort"
	"strings"
	"sync"
)

var (
	once  sync.Once
	words []string
)

// Words reads path once and returns its sorted, upper-cased words.
//
//go:noinline
func Words(path string) []string {
	once.Do(func() {
		data, err := os.ReadFile(path)
		if err != nil {
			return
		}
		words = strings.Fields(strings.ToUpper(string(data)))
		sort.Slice(words, func(i, j int) bool { return words[i] < words[j] })
	})
	return words
}
