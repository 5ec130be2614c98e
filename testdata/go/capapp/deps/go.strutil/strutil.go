// Package strutil lives at github.com/acme/go.strutil: the dot in the last
// path element is escaped in symbol names (github.com/acme/go%2estrutil.Sort).
// It is pure computation.
package strutil

import (
	"sort"
	"strings"
)

// Sort sorts words case-insensitively with sort.Slice; the less callback is
// this module's code, called back from the standard library.
//
//go:noinline
func Sort(words []string) {
	sort.Slice(words, func(i, j int) bool {
		return strings.ToLower(words[i]) < strings.ToLower(words[j])
	})
}

// Reverse returns s reversed by runes.
//
//go:noinline
func Reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}
