// Package mono is the root module of a fake monorepo; its directory sub/ is
// a separate module (github.com/acme/mono/sub). Module attribution must
// pick the longest module path.
package mono

import (
	"os"

	"github.com/acme/mono/sub"
)

// Open opens path through the nested module: mono.Open -> sub.OpenFile ->
// os.OpenFile, each a real frame.
//
//go:noinline
func Open(path string) (*os.File, error) {
	return sub.OpenFile(path)
}
