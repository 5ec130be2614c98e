// Command perfapp is the workload of gohook's performance evaluation
// (bench/evaluate.py, docs/performance.md).
//
//	perfapp micro -op OP -n N [-depth D] [-threads T] [-path P] [-env NAME] [-exe PROG]
//	    github.com/acme/perfwork performs OP (open, getenv, dial, exec) N times
//	    per thread at D extra stack frames; prints one JSON line with ns_per_op
//	perfapp serve -root DIR -upstream URL [-addr HOST:PORT] [-ready FILE]
//	    the HTTP service: GET /file/NAME reads a setting from the environment
//	    (github.com/acme/envconfig), asks the upstream service for metadata over
//	    loopback (github.com/acme/upclient) and serves DIR/NAME from disk (this
//	    module); prints "listening http://ADDR" once it accepts connections
//	    (and writes the URL to FILE)
//	perfapp churn -op OP -n N
//	    OP (madvise, mprotect, mmap, gc, getpid) N times: system calls gohook's
//	    guard watches (churn.go); prints one JSON line with ns_per_op
//	perfapp upstream [-addr HOST:PORT] [-ready FILE]
//	    the upstream service: GET /meta?name=NAME answers a small JSON document;
//	    prints "listening http://ADDR"
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/acme/envconfig"
	"github.com/acme/perfwork"
	"github.com/acme/upclient"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: perfapp micro|serve|upstream|churn [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "micro":
		err = micro(os.Args[2:])
	case "serve":
		err = serve(os.Args[2:])
	case "upstream":
		err = upstream(os.Args[2:])
	case "churn":
		err = churn(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "perfapp:", err)
		os.Exit(1)
	}
}

func micro(args []string) error {
	fs := flag.NewFlagSet("micro", flag.ContinueOnError)
	var cfg perfwork.Config
	fs.StringVar(&cfg.Op, "op", "getenv", "operation: "+strings.Join(perfwork.Ops, ", "))
	fs.IntVar(&cfg.N, "n", 100000, "operations per thread")
	fs.IntVar(&cfg.Depth, "depth", 0, "extra stack frames above the loop")
	fs.IntVar(&cfg.Threads, "threads", 1, "threads, each running N operations")
	fs.StringVar(&cfg.Path, "path", "/etc/hostname", "open: the file")
	fs.StringVar(&cfg.Env, "env", "PERFAPP_SETTING", "getenv: the variable")
	fs.StringVar(&cfg.Exe, "exe", "/bin/true", "exec: the program")
	if err := fs.Parse(args); err != nil {
		return err
	}
	per, err := perfwork.Run(cfg)
	if err != nil {
		return err
	}
	out, _ := json.Marshal(map[string]any{"op": cfg.Op, "n": cfg.N, "depth": cfg.Depth, "threads": cfg.Threads,
		"ns_per_op": per})
	fmt.Println(string(out))
	return nil
}

// listen opens the listening socket, then announces its address on stdout
// and, when ready is not empty, in the file ready (written atomically).
func listen(addr, ready string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	url := fmt.Sprintf("http://%s", ln.Addr())
	fmt.Println("listening", url)
	if ready != "" {
		tmp := ready + ".tmp"
		if err := os.WriteFile(tmp, []byte(url+"\n"), 0o644); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, ready); err != nil {
			return nil, err
		}
	}
	return ln, nil
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	root := fs.String("root", "", "directory of the served files")
	up := fs.String("upstream", "", "base URL of the upstream service")
	conns := fs.Int("conns", 64, "upstream connections kept alive")
	ready := fs.String("ready", "", "write the service URL to this file once listening")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *root == "" || *up == "" {
		return fmt.Errorf("serve needs -root and -upstream")
	}
	client := upclient.New(*up, *conns)
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/file/", func(w http.ResponseWriter, r *http.Request) {
		serveFile(w, r, *root, client)
	})
	ln, err := listen(*addr, *ready)
	if err != nil {
		return err
	}
	return http.Serve(ln, mux)
}

// serveFile is the service's one real endpoint.
func serveFile(w http.ResponseWriter, r *http.Request, root string, client *upclient.Client) {
	name := strings.TrimPrefix(r.URL.Path, "/file/")
	if name == "" || strings.Contains(name, "/") || strings.HasPrefix(name, ".") {
		http.Error(w, "bad name", http.StatusBadRequest)
		return
	}
	cacheControl := envconfig.String("PERFAPP_CACHE_CONTROL", "no-cache")
	meta, err := client.Get(r.Context(), "/meta?name="+name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	f, err := os.Open(filepath.Join(root, name))
	if err != nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", cacheControl)
	h.Set("Content-Length", strconv.FormatInt(st.Size(), 10))
	h.Set("X-Meta", strings.TrimSpace(string(meta)))
	io.Copy(w, f)
}

func upstream(args []string) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	ready := fs.String("ready", "", "write the service URL to this file once listening")
	if err := fs.Parse(args); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/meta", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"name": r.URL.Query().Get("name"), "version": "v1"})
	})
	ln, err := listen(*addr, *ready)
	if err != nil {
		return err
	}
	return http.Serve(ln, mux)
}
