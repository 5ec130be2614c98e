//go:build go1.24

package main

import "os"

// rootAPIs calls os.Root, added in Go 1.24.
func rootAPIs() {
	r, err := os.OpenRoot("/tmp")
	keep(err)
	if r == nil {
		return
	}
	keep(r.Open("x"))
	keep(r.Create("x"))
	keep(r.OpenFile("x", os.O_WRONLY, 0))
	keep(r.OpenRoot("d"))
	keep(r.Mkdir("d", 0o700), r.Remove("x"))
	keep(r.Stat("x"))
	keep(r.Lstat("x"))
	keep(os.OpenInRoot("/tmp", "x"))
}
