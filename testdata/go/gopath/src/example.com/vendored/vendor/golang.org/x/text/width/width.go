// Package width is fake vendored golang.org/x code (not the real x/text):
// in a GOPATH build it is example.com/vendored/vendor/golang.org/x/text/width,
// which is the application's vendored copy, not the standard library's
// vendor/golang.org/x/... packages.
package width

import "strings"

// Narrow upper-cases s; it only exists to be a vendored golang.org/x function.
//
//go:noinline
func Narrow(s string) string {
	return strings.ToUpper(s)
}
