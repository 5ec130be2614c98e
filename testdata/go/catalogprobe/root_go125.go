//go:build go1.25

package main

import (
	"os"
	"time"
)

// rootAPIs125 calls the os.Root methods added in Go 1.25.
func rootAPIs125() {
	r, _ := os.OpenRoot("/tmp")
	if r == nil {
		return
	}
	keep(r.Chmod("x", 0o600), r.Chown("x", 1, 1), r.Lchown("x", 1, 1))
	keep(r.Chtimes("x", time.Time{}, time.Time{}), r.Rename("x", "y"), r.Link("x", "z"))
	keep(r.Symlink("x", "s"), r.MkdirAll("a/b", 0o700), r.RemoveAll("a"))
	keep(r.Readlink("s"))
	keep(r.ReadFile("x"))
	keep(r.WriteFile("x", nil, 0o600))
}
