// Package webhooks is walkers's HTTP helper (a subpackage, so that programs
// using only the root package do not link net/http): Register installs an
// http.HandlerFunc that writes a file whenever the application's server runs
// it, on a goroutine net/http starts for the connection. RegisterFiles
// installs the standard library's own file server instead: no walkers code
// runs when it serves.
package webhooks

import (
	"net/http"
	"os"
)

// Register installs a handler for pattern on mux that writes out when served.
//
//go:noinline
func Register(mux *http.ServeMux, pattern, out string) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := os.WriteFile(out, []byte("written by walkers/webhooks\n"), 0o644); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write([]byte("ok\n"))
	})
}

// RegisterFiles serves the files under dir at pattern with http.FileServer.
//
//go:noinline
func RegisterFiles(mux *http.ServeMux, pattern, dir string) {
	mux.Handle(pattern, http.StripPrefix(pattern, http.FileServer(http.Dir(dir))))
}
