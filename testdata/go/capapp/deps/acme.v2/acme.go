// Package acme is a fake gopkg.in-style module (import path
// gopkg.in/acme.v2, package name acme) for gohook fixtures. It parses
// KEY=VALUE settings and touches nothing outside the process.
package acme

import (
	"fmt"
	"strings"
)

// Setting is one KEY=VALUE pair.
type Setting struct {
	Key, Value string
}

// Parse splits "KEY=VALUE".
//
//go:noinline
func Parse(s string) (Setting, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return Setting{}, fmt.Errorf("acme: %q is not KEY=VALUE", s)
	}
	return Setting{Key: k, Value: v}, nil
}
