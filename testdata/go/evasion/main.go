// Command evasion runs one escape technique of a fake malicious dependency
// per invocation, for gohook's adversarial suite (tests/test_evasion.py,
// docs/evasion.md): `evasion TECHNIQUE [ARGS]`. Each dependency module under
// deps/ stands for one family of techniques; main itself is the trusted
// application and does its own (allowed) work around them.
//
// Exit status: 0 when the technique ran to its end (its side effect then
// exists), 1 on failure, 2 on bad usage. Under gohook enforcement a blocked
// technique dies of SIGKILL instead.
//
// cmd/strict is the same for the techniques that need `unattributed: deny`:
// this program links net/http, whose package initialization reads GODEBUG
// with no module on the stack, so under that policy it dies before main.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/asmkit/trampoline"
	"github.com/cbridge/nativefs"
	"github.com/cfgsrc/envfile"
	"github.com/devops-kit/shellcmd"
	"github.com/fastenv/linkenv"
	"github.com/funcutil/walkers"
	"github.com/funcutil/walkers/webhooks"
	"github.com/hotcode/jit"
	_ "github.com/metricsd/autoreg" // technique 3 lives in its init()
	"github.com/otelkit/exporter"
	"github.com/parallel-go/fanout"
	"github.com/perfkit/rawio"
	"github.com/procguard/unpin"
	"github.com/sysutil/rawx"
	"github.com/tinyhelpers/fsx"
	"github.com/workerpool/asyncfs"
	"github.com/workerpool/asyncfs/httpfetch"
	"go.evil.example/telemetry"
)

type technique struct {
	usage string
	run   func(args []string) error
}

var techniques = map[string]technique{
	// 1. goroutine laundering (asyncfs)
	"go-remove":   {"PATH", func(a []string) error { asyncfs.Remove(a[0]); return waitGone(a[0]) }},
	"go-write":    {"PATH", func(a []string) error { asyncfs.Write(a[0]); return waitExists(a[0]) }},
	"go-dial":     {"ADDR", func(a []string) error { asyncfs.Dial(a[0]); return waitGoroutines() }},
	"go-clearenv": {"", func(a []string) error { asyncfs.Clearenv(); return waitEnvEmpty() }},
	"go-http":     {"URL", goHTTP},
	// 2. callbacks through the standard library (walkers)
	"cb-walkdir":       {"DIR PATH", func(a []string) error { return walkers.WalkDir(a[0], a[1]) }},
	"cb-sort":          {"PATH", func(a []string) error { walkers.Sort(a[0]); return exists(a[0]) }},
	"cb-once":          {"PATH", func(a []string) error { walkers.Once(a[0]); return exists(a[0]) }},
	"cb-afterfunc":     {"PATH", func(a []string) error { walkers.AfterFunc(a[0]); return exists(a[0]) }},
	"cb-afterfunc-std": {"", func(a []string) error { walkers.AfterFuncStd(); return waitEnvEmpty() }},
	"cb-finalizer":     {"PATH", func(a []string) error { walkers.Finalizer(a[0]); return exists(a[0]) }},
	"cb-finalizer-std": {"PATH", cbFinalizerStd},
	"cb-reflect":       {"PATH", func(a []string) error { walkers.Reflect(a[0]); return exists(a[0]) }},
	"cb-methodvalue":   {"ADDR", func(a []string) error { return walkers.MethodValue(a[0]) }},
	"cb-defer":         {"PATH", func(a []string) error { walkers.Defer(a[0]); return exists(a[0]) }},
	"cb-panic":         {"PATH", func(a []string) error { _ = walkers.Panic(a[0]); return exists(a[0]) }},
	"cb-handler":       {"PATH", cbHandler},
	"cb-fileserver":    {"DIR NAME", cbFileServer},
	// 3. init() before main (autoreg): the work happens before main runs
	"init-file": {"PATH", func(a []string) error { return exists(a[0]) }},
	"init-dial": {"ADDR", func(a []string) error { return nil }},
	// 4. inlining and generics (fsx)
	"inline":         {"PATH", func(a []string) error { return fsx.Touch(a[0]) }},
	"generic":        {"PATH", func(a []string) error { return fsx.Save(a[0], "generic\n") }},
	"generic-inline": {"PATH", func(a []string) error { return fsx.Put(a[0], "generic inlined\n") }},
	// 5. direct system calls (rawio)
	"sys-syscall6":   {"PATH", func(a []string) error { return rawio.Create(a[0]) }},
	"sys-rawsyscall": {"PATH", func(a []string) error { return rawio.Unlink(a[0]) }},
	"sys-asm":        {"PATH", func(a []string) error { return rawio.CreateAsm(a[0]) }},
	"sys-jit":        {"PATH", func(a []string) error { return rawio.CreateJIT(a[0]) }},
	// 6. cgo (nativefs; cgo builds only)
	"cgo-add":     {"", cgoAdd},
	"cgo-open":    {"PATH", func(a []string) error { return nativefs.Create(a[0]) }},
	"cgo-connect": {"PORT", cgoConnect},
	// 7. exec (shellcmd)
	"exec-sh": {"PATH", func(a []string) error { return shellcmd.Sh("echo pwned > " + a[0]) }},
	// 8. stack forgery (trampoline)
	"forge-nofp": {"PATH", func(a []string) error { trampoline.RemoveNoFP(a[0]); return gone(a[0]) }},
	"forge-ret":  {"PATH", func(a []string) error { trampoline.RemoveForged(a[0]); return gone(a[0]) }},
	// 9. concurrency (fanout) while main reads
	"hammer": {"DIR N", hammer},
	// 11. a module path that starts like a pre-1.20 linker name (`go.`): gotelemetry
	"goprefix-env":   {"NAME", func(a []string) error { fmt.Printf("%s=%s\n", a[0], telemetry.Secret(a[0])); return nil }},
	"goprefix-dial":  {"ADDR", func(a []string) error { return telemetry.Beacon(a[0]) }},
	"goprefix-write": {"PATH", func(a []string) error { return telemetry.Drop(a[0]) }},
	// 12. outliving or unhooking the enforcer (unpin)
	"unpin-orphan": {"ENFORCER_PID SECONDS PATH", func(a []string) error {
		pid, _ := strconv.Atoi(a[0])
		secs, _ := strconv.Atoi(a[1])
		return unpin.Orphan(pid, time.Duration(secs)*time.Second, a[2])
	}},
	"unpin-getenv": {"none|write|madvise SECONDS NAME", func(a []string) error {
		secs, _ := strconv.Atoi(a[1])
		return unpin.Getenv(a[0], time.Duration(secs)*time.Second, a[2])
	}},
	// 16. a descriptor main opened, written by rawx (a known limit)
	"held-fd": {"PATH", func(a []string) error {
		f, err := os.OpenFile(a[0], os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		return rawx.WriteHeld(f)
	}},
	// main's own work, for control runs
	"main-write": {"PATH", func(a []string) error { return os.WriteFile(a[0], []byte("main\n"), 0o644) }},
}

func exists(path string) error {
	_, err := os.Stat(path)
	return err
}

func gone(path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s still exists", path)
	}
	return nil
}

// waitFor polls cond (main's own, allowed work) for up to 10 seconds.
func waitFor(what string, cond func() bool) error {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return nil
		}
	}
	return fmt.Errorf("gave up waiting for %s", what)
}

func waitGone(path string) error {
	return waitFor(path+" to disappear", func() bool { return gone(path) == nil })
}

func waitExists(path string) error {
	return waitFor(path+" to appear", func() bool { return exists(path) == nil })
}

var baseGoroutines = runtime.NumGoroutine()

func waitGoroutines() error {
	return waitFor("the goroutine to finish", func() bool { return runtime.NumGoroutine() <= baseGoroutines })
}

func waitEnvEmpty() error {
	return waitFor("the environment to empty", func() bool { return len(os.Environ()) == 0 })
}

func goHTTP(a []string) error {
	n, err := httpfetch.Fetch(a[0])
	if err != nil {
		return err
	}
	fmt.Printf("fetched %d bytes\n", n)
	return nil
}

func cbFinalizerStd(a []string) error {
	walkers.FinalizerStd("/bin/sh", "-c", "echo pwned > "+a[0])
	return waitExists(a[0])
}

// cbHandler: walkers registers a handler; main serves it and requests it.
func cbHandler(a []string) error {
	mux := http.NewServeMux()
	webhooks.Register(mux, "/hook", a[0])
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	go http.Serve(ln, mux)
	resp, err := http.Get("http://" + ln.Addr().String() + "/hook")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("handler said %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return exists(a[0])
}

// cbFileServer: walkers registers the standard library's file server for DIR; main serves it and GETs NAME.
func cbFileServer(a []string) error {
	mux := http.NewServeMux()
	webhooks.RegisterFiles(mux, "/files/", a[0])
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	go http.Serve(ln, mux)
	resp, err := http.Get("http://" + ln.Addr().String() + "/files/" + a[1])
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("file server said %s", resp.Status)
	}
	fmt.Printf("served %d bytes\n", len(body))
	return nil
}

func cgoAdd(a []string) error {
	if !nativefs.Available {
		return fmt.Errorf("built without cgo")
	}
	fmt.Printf("C says 2+3=%d\n", nativefs.Add(2, 3))
	return nil
}

func cgoConnect(a []string) error {
	port, err := strconv.Atoi(a[0])
	if err != nil {
		return err
	}
	return nativefs.Connect(port)
}

// hammer: fanout sprays writes from 8 goroutines while main keeps reading its own file.
func hammer(a []string) error {
	n, err := strconv.Atoi(a[1])
	if err != nil {
		return err
	}
	own := filepath.Join(a[0], "main-own.txt")
	if err := os.WriteFile(own, []byte("main\n"), 0o644); err != nil {
		return err
	}
	stop := make(chan struct{})
	reads := make(chan int)
	go func() {
		count := 0
		for {
			select {
			case <-stop:
				reads <- count
				return
			default:
			}
			if _, err := os.ReadFile(own); err == nil {
				count++
			}
		}
	}()
	written := fanout.Spray(a[0], n)
	close(stop)
	fmt.Printf("fanout wrote %d files while main read %d times\n", written, <-reads)
	return nil
}

func usage() {
	names := make([]string, 0, len(techniques))
	for name := range techniques {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintln(os.Stderr, "usage: evasion TECHNIQUE [ARGS]")
	for _, name := range names {
		fmt.Fprintf(os.Stderr, "  evasion %s %s\n", name, techniques[name].usage)
	}
}

// register adds the techniques of the dependencies that keep their own table (issue 12's classes); each
// checks its own arguments.
func register() {
	for _, table := range []map[string]func([]string) error{
		exporter.Techniques,
		jit.Techniques,
		envfile.Techniques,
		linkenv.Techniques,
		rawx.Techniques,
	} {
		for name, run := range table {
			if _, dup := techniques[name]; dup {
				panic("evasion: technique " + name + " registered twice")
			}
			techniques[name] = technique{"", run}
		}
	}
}

func main() {
	register()
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	t, ok := techniques[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "evasion: unknown technique %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	args := os.Args[2:]
	if want := len(strings.Fields(t.usage)); len(args) < want {
		fmt.Fprintf(os.Stderr, "evasion %s: needs %s\n", os.Args[1], t.usage)
		os.Exit(2)
	}
	if err := t.run(args); err != nil {
		fmt.Fprintf(os.Stderr, "evasion %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	fmt.Printf("evasion %s: done\n", os.Args[1])
}
