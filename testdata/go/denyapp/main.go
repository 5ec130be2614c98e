// Command denyapp is the fixture of graceful deny (issue 15): under `action: error` a dependency's
// forbidden call must return EPERM to that dependency, and the process go on, instead of being killed.
//
//	denyapp [-by grab|worker] ACTION [ARG...]
//	denyapp serve ADDR_FILE
//	denyapp mixed SECONDS DENYPATH OKPATH
//
// ACTION runs one capability call in the dependency named by -by (default grab): github.com/evil/grab,
// which the test policies deny, or github.com/good/worker, which they allow (same calls, body for body).
// It prints one JSON line with the outcome, then {"main": "continues"}, and exits 0 whether the call
// failed or not: a process still printing after a denied call is what graceful deny promises. Exit
// status 2 is bad usage. See README.md for the actions and the JSON fields.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/evil/grab"
	"github.com/good/worker"
)

// capabilities is what both dependencies implement: one capability call per method.
type capabilities interface {
	Read(path string) ([]byte, error)
	Create(path string) error
	Remove(path string) error
	Stat(path string) (int64, error)
	Dial(addr string) (string, error)
	Listen() (string, error)
	SendTo(addr string) (int, error)
	Exec(path string, args ...string) error
	Getenv(name string) string
	LookupEnv(name string) (string, bool)
	Environ() []string
	Setenv(name, value string) error
	Unsetenv(name string) error
	Clearenv()
	Kill(pid int) error
	Signal(pid int) error
	Uname() (string, error)
	Hostname() (string, error)
	MmapExec() (int, error)
	RawSyscall() (int, error)
	BlockSigsysRead(path string) ([]byte, error)
	LocalZone() string
}

// dependency is one of the two dependencies, with its short name (the -by value) and module path.
type dependency struct {
	name   string
	module string
	lib    capabilities
}

func dependencyNamed(name string) (dependency, bool) {
	switch name {
	case "grab":
		return dependency{"grab", "github.com/evil/grab", &grab.Lib{}}, true
	case "worker":
		return dependency{"worker", "github.com/good/worker", &worker.Lib{}}, true
	}
	return dependency{}, false
}

// result is the JSON line an action prints.
type result struct {
	Action       string   `json:"action"`
	By           string   `json:"by"`
	Module       string   `json:"module"`
	OK           bool     `json:"ok"`
	Err          string   `json:"err"`
	Errno        int      `json:"errno"`
	IsPermission bool     `json:"is_permission"`
	IsEPERM      bool     `json:"is_eperm"`
	Value        string   `json:"value"`
	Found        *bool    `json:"found,omitempty"` // lookupenv, environ, unsetenv
	Errs         []string `json:"errs,omitempty"`  // kill: the errors of its two calls, "" for success
}

// errno is the syscall.Errno somewhere in err's chain (errors.As), else 0.
func errno(err error) int {
	var e syscall.Errno
	if errors.As(err, &e) {
		return int(e)
	}
	return 0
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func printJSON(v interface{}) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))
}

// action is one ACTION: its argument count (min; variadic when max is -1) and what it does. run returns
// the value to report, whether the value was found (nil when that means nothing), and the error.
type action struct {
	usage    string
	min, max int
	run      func(d dependency, args []string) (value string, found *bool, errs []string, err error)
}

func boolp(b bool) *bool { return &b }

var actions = map[string]action{
	"read": {"PATH", 1, 1, func(d dependency, a []string) (string, *bool, []string, error) {
		b, err := d.lib.Read(a[0])
		return strconv.Itoa(len(b)), nil, nil, err
	}},
	"create": {"PATH", 1, 1, func(d dependency, a []string) (string, *bool, []string, error) {
		return "", nil, nil, d.lib.Create(a[0])
	}},
	"remove": {"PATH", 1, 1, func(d dependency, a []string) (string, *bool, []string, error) {
		return "", nil, nil, d.lib.Remove(a[0])
	}},
	"stat": {"PATH", 1, 1, func(d dependency, a []string) (string, *bool, []string, error) {
		n, err := d.lib.Stat(a[0])
		return strconv.FormatInt(n, 10), nil, nil, err
	}},
	"dial": {"ADDR", 1, 1, func(d dependency, a []string) (string, *bool, []string, error) {
		v, err := d.lib.Dial(a[0])
		return v, nil, nil, err
	}},
	"listen": {"", 0, 0, func(d dependency, a []string) (string, *bool, []string, error) {
		v, err := d.lib.Listen()
		return v, nil, nil, err
	}},
	"sendto": {"ADDR", 1, 1, func(d dependency, a []string) (string, *bool, []string, error) {
		n, err := d.lib.SendTo(a[0])
		return strconv.Itoa(n), nil, nil, err
	}},
	"exec": {"PATH [ARG...]", 1, -1, func(d dependency, a []string) (string, *bool, []string, error) {
		return "", nil, nil, d.lib.Exec(a[0], a[1:]...)
	}},
	"getenv": {"NAME", 1, 1, func(d dependency, a []string) (string, *bool, []string, error) {
		return d.lib.Getenv(a[0]), nil, nil, nil
	}},
	"lookupenv": {"NAME", 1, 1, func(d dependency, a []string) (string, *bool, []string, error) {
		_, found := d.lib.LookupEnv(a[0])
		return strconv.FormatBool(found), boolp(found), nil, nil
	}},
	"environ": {"NAME", 1, 1, func(d dependency, a []string) (string, *bool, []string, error) {
		env := d.lib.Environ()
		found := false
		for _, kv := range env {
			if strings.HasPrefix(kv, a[0]+"=") {
				found = true
			}
		}
		return strconv.Itoa(len(env)), boolp(found), nil, nil
	}},
	"setenv": {"NAME VALUE", 2, 2, func(d dependency, a []string) (string, *bool, []string, error) {
		err := d.lib.Setenv(a[0], a[1])
		return os.Getenv(a[0]), nil, nil, err // main reads it back
	}},
	"unsetenv": {"NAME", 1, 1, func(d dependency, a []string) (string, *bool, []string, error) {
		err := d.lib.Unsetenv(a[0])
		v, found := os.LookupEnv(a[0]) // main: is it still there?
		return v, boolp(found), nil, err
	}},
	"clearenv": {"", 0, 0, func(d dependency, a []string) (string, *bool, []string, error) {
		d.lib.Clearenv()
		return strconv.Itoa(len(os.Environ())), nil, nil, nil // main counts what is left
	}},
	"kill": {"", 0, 0, func(d dependency, a []string) (string, *bool, []string, error) {
		pid := os.Getpid()
		errKill := d.lib.Kill(pid)
		errSignal := d.lib.Signal(pid)
		err := errKill
		if err == nil {
			err = errSignal
		}
		return strconv.Itoa(pid), nil, []string{errText(errKill), errText(errSignal)}, err
	}},
	"uname": {"", 0, 0, func(d dependency, a []string) (string, *bool, []string, error) {
		v, err := d.lib.Uname()
		return v, nil, nil, err
	}},
	"hostname": {"", 0, 0, func(d dependency, a []string) (string, *bool, []string, error) {
		v, err := d.lib.Hostname()
		return v, nil, nil, err
	}},
	"mmapexec": {"", 0, 0, func(d dependency, a []string) (string, *bool, []string, error) {
		n, err := d.lib.MmapExec()
		return strconv.Itoa(n), nil, nil, err
	}},
	"rawsyscall": {"", 0, 0, func(d dependency, a []string) (string, *bool, []string, error) {
		pid, err := d.lib.RawSyscall()
		return strconv.Itoa(pid), nil, nil, err
	}},
	"localtime": {"", 0, 0, func(d dependency, a []string) (string, *bool, []string, error) {
		return d.lib.LocalZone(), nil, nil, nil
	}},
	"blockread": {"PATH", 1, 1, func(d dependency, a []string) (string, *bool, []string, error) {
		b, err := d.lib.BlockSigsysRead(a[0])
		return strconv.Itoa(len(b)), nil, nil, err
	}},
}

func usage(msg string) {
	if msg != "" {
		fmt.Fprintln(os.Stderr, "denyapp:", msg)
	}
	fmt.Fprintln(os.Stderr, "usage: denyapp [-by grab|worker] ACTION [ARG...]")
	fmt.Fprintln(os.Stderr, "       denyapp serve ADDR_FILE")
	fmt.Fprintln(os.Stderr, "       denyapp mixed SECONDS DENYPATH OKPATH")
	fmt.Fprintln(os.Stderr, "actions:")
	for _, name := range []string{"read", "create", "remove", "stat", "dial", "listen", "sendto", "exec",
		"getenv", "lookupenv", "environ", "setenv", "unsetenv", "clearenv", "kill", "uname", "hostname",
		"mmapexec", "rawsyscall", "blockread", "localtime"} {
		fmt.Fprintf(os.Stderr, "  %s %s\n", name, actions[name].usage)
	}
	os.Exit(2)
}

func main() {
	flags := flag.NewFlagSet("denyapp", flag.ContinueOnError)
	flags.SetOutput(os.Stderr)
	by := flags.String("by", "grab", "the dependency that makes the call: grab (denied by the tests) or worker (allowed)")
	if err := flags.Parse(os.Args[1:]); err != nil {
		usage("")
	}
	args := flags.Args()
	if len(args) == 0 {
		usage("no action")
	}
	d, ok := dependencyNamed(*by)
	if !ok {
		usage(fmt.Sprintf("-by %q: want grab or worker", *by))
	}
	name, rest := args[0], args[1:]
	switch name {
	case "serve":
		if len(rest) != 1 {
			usage("serve takes ADDR_FILE")
		}
		serve(rest[0])
	case "mixed":
		if len(rest) != 3 {
			usage("mixed takes SECONDS DENYPATH OKPATH")
		}
		seconds, err := strconv.ParseFloat(rest[0], 64)
		if err != nil || seconds <= 0 {
			usage(fmt.Sprintf("mixed: bad SECONDS %q", rest[0]))
		}
		mixed(time.Duration(seconds*float64(time.Second)), rest[1], rest[2])
	case "script":
		script(d)
	default:
		runAction(d, name, rest)
	}
	printJSON(map[string]string{"main": "continues"})
	os.Exit(0)
}

// runAction runs one action in dependency d and prints its JSON line (usage and exit 2 when malformed).
func runAction(d dependency, name string, rest []string) {
	act, known := actions[name]
	if !known {
		usage(fmt.Sprintf("unknown action %q", name))
	}
	if len(rest) < act.min || (act.max >= 0 && len(rest) > act.max) {
		usage(fmt.Sprintf("%s takes %s", name, act.usage))
	}
	value, found, errs, err := act.run(d, rest)
	printJSON(result{
		Action:       name,
		By:           d.name,
		Module:       d.module,
		OK:           err == nil,
		Err:          errText(err),
		Errno:        errno(err),
		IsPermission: errors.Is(err, fs.ErrPermission),
		IsEPERM:      errors.Is(err, syscall.EPERM),
		Value:        value,
		Found:        found,
		Errs:         errs,
	})
}

// script runs the actions of stdin's lines in this one process, in order: "ACTION ARG..." (fields split
// on tabs, so arguments may hold spaces), "-by NAME" first to pick another dependency for that line.
// One process for many denied calls: the tests check that it survives every one of them.
func script(d dependency) {
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		fields := strings.Split(strings.TrimRight(lines.Text(), "\r"), "\t")
		if len(fields) == 0 || fields[0] == "" {
			continue
		}
		by := d
		if fields[0] == "-by" && len(fields) >= 3 {
			other, ok := dependencyNamed(fields[1])
			if !ok {
				usage(fmt.Sprintf("script: -by %q", fields[1]))
			}
			by, fields = other, fields[2:]
		}
		runAction(by, fields[0], fields[1:])
	}
}

// serve runs an HTTP server on 127.0.0.1:0 whose handlers call the dependencies, until GET /quit:
// a service that must keep serving after a dependency's call was denied. The address goes to addrFile
// (written whole, then renamed into place). On exit it prints the request counts as one JSON line.
func serve(addrFile string) {
	g, _ := dependencyNamed("grab")
	w, _ := dependencyNamed("worker")
	var served, deny, denyFailed, allowed, allowedFailed, okCount, quitCount int64
	quit := make(chan struct{})
	var once sync.Once

	read := func(d dependency, failed *int64) http.HandlerFunc {
		return func(rw http.ResponseWriter, r *http.Request) {
			b, err := d.lib.Read(r.URL.Query().Get("path"))
			if err != nil {
				atomic.AddInt64(failed, 1)
				rw.Header().Set("X-Errno", strconv.Itoa(errno(err)))
				rw.WriteHeader(http.StatusInternalServerError)
				fmt.Fprintln(rw, err.Error())
				return
			}
			fmt.Fprintln(rw, len(b))
		}
	}
	count := func(n *int64, h http.HandlerFunc) http.HandlerFunc {
		return func(rw http.ResponseWriter, r *http.Request) {
			defer atomic.AddInt64(&served, 1)
			atomic.AddInt64(n, 1)
			h(rw, r)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/deny", count(&deny, read(g, &denyFailed)))
	mux.HandleFunc("/allowed", count(&allowed, read(w, &allowedFailed)))
	mux.HandleFunc("/ok", count(&okCount, func(rw http.ResponseWriter, r *http.Request) { fmt.Fprintln(rw, "ok") }))
	mux.HandleFunc("/quit", count(&quitCount, func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(rw, "bye")
		once.Do(func() { close(quit) })
	}))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "denyapp serve:", err)
		os.Exit(1)
	}
	tmp := addrFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(l.Addr().String()+"\n"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "denyapp serve:", err)
		os.Exit(1)
	}
	if err := os.Rename(tmp, addrFile); err != nil {
		fmt.Fprintln(os.Stderr, "denyapp serve:", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case <-quit:
	case err := <-done:
		fmt.Fprintln(os.Stderr, "denyapp serve:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx) // waits for the /quit handler to finish
	printJSON(map[string]int64{
		"served":         atomic.LoadInt64(&served),
		"deny":           atomic.LoadInt64(&deny),
		"deny_failed":    atomic.LoadInt64(&denyFailed),
		"allowed":        atomic.LoadInt64(&allowed),
		"allowed_failed": atomic.LoadInt64(&allowedFailed),
		"ok":             atomic.LoadInt64(&okCount),
		"quit":           atomic.LoadInt64(&quitCount),
	})
}

// tally is what one goroutine of mixed counted.
type tally struct {
	calls, ok, eperm, other, permission int64
	errnos                              map[string]int64
	firstErr                            string
}

func (t *tally) add(err error) {
	t.calls++
	if err == nil {
		t.ok++
		return
	}
	if t.firstErr == "" {
		t.firstErr = err.Error()
	}
	if errors.Is(err, syscall.EPERM) {
		t.eperm++
	} else {
		t.other++
	}
	if errors.Is(err, fs.ErrPermission) {
		t.permission++
	}
	t.errnos[strconv.Itoa(errno(err))]++
}

// mixed runs 8 goroutines for d, all released at once: 0-3 have grab read denyPath in a loop, 4-7 have
// worker read okPath. Denials of grab's calls must not make worker's fail (nor stop the process).
func mixed(d time.Duration, denyPath, okPath string) {
	g, _ := dependencyNamed("grab")
	w, _ := dependencyNamed("worker")
	tallies := make([]tally, 8)
	start := make(chan struct{})
	var wg sync.WaitGroup
	var deadline time.Time
	for i := range tallies {
		tallies[i].errnos = map[string]int64{}
		dep, path := g, denyPath
		if i >= 4 {
			dep, path = w, okPath
		}
		wg.Add(1)
		go func(t *tally, dep dependency, path string) {
			defer wg.Done()
			<-start
			for time.Now().Before(deadline) {
				_, err := dep.lib.Read(path)
				t.add(err)
			}
		}(&tallies[i], dep, path)
	}
	deadline = time.Now().Add(d)
	close(start) // the goroutines read deadline only after this
	wg.Wait()

	out := struct {
		DeniedCalls       int64            `json:"denied_calls"`
		DeniedOK          int64            `json:"denied_ok"`
		DeniedEPERM       int64            `json:"denied_eperm"`
		DeniedOther       int64            `json:"denied_other"`
		DeniedPermission  int64            `json:"denied_is_permission"`
		DeniedErrnos      map[string]int64 `json:"denied_errnos"`
		DeniedFirstError  string           `json:"denied_first_error"`
		AllowedCalls      int64            `json:"allowed_calls"`
		AllowedFailed     int64            `json:"allowed_failed"`
		AllowedFirstError string           `json:"allowed_first_error"`
		PerGoroutine      []int64          `json:"per_goroutine"`
		Gomaxprocs        int              `json:"gomaxprocs"`
	}{DeniedErrnos: map[string]int64{}, Gomaxprocs: runtime.GOMAXPROCS(0)}
	for i, t := range tallies {
		out.PerGoroutine = append(out.PerGoroutine, t.calls)
		if i < 4 {
			out.DeniedCalls += t.calls
			out.DeniedOK += t.ok
			out.DeniedEPERM += t.eperm
			out.DeniedOther += t.other
			out.DeniedPermission += t.permission
			for k, v := range t.errnos {
				out.DeniedErrnos[k] += v
			}
			if out.DeniedFirstError == "" {
				out.DeniedFirstError = t.firstErr
			}
		} else {
			out.AllowedCalls += t.calls
			out.AllowedFailed += t.calls - t.ok
			if out.AllowedFirstError == "" {
				out.AllowedFirstError = t.firstErr
			}
		}
	}
	printJSON(out)
}
