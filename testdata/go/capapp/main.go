// Command capapp exercises one capability per action through fake
// third-party modules, so that gohook can be tested on which module did what.
// See README.md for the actions. It exits 0 on success and 1 (with a message
// on stderr) on failure, 2 on bad usage.
package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/acme/fileutil"
	strutil "github.com/acme/go.strutil"
	"github.com/acme/mono"
	"github.com/acme/netclient"
	"github.com/acme/rawsys"
	"github.com/acme/runner"
	"github.com/evil/telemetry"
	acme "gopkg.in/acme.v2"
)

// action is one capapp sub-command; args excludes the action name.
type action struct {
	usage string
	run   func(args []string) error
}

// cgoAction is set by cgo.go when the binary is built with cgo.
var cgoAction func(args []string) error

var actions = map[string]action{
	"read":       {"PATH", doRead},
	"create":     {"PATH", doCreate},
	"dial":       {"ADDR", doDial},
	"listen":     {"", doListen},
	"getenv":     {"NAME", doGetenv},
	"setenv":     {"[KEY=VALUE]", doSetenv},
	"phonehome":  {"ADDR", doPhoneHome},
	"dump":       {"PATH", doDump},
	"exec":       {"", doExec},
	"walk":       {"DIR", doWalk},
	"sort":       {"[WORD...]", doSort},
	"goroutine":  {"PATH", doGoroutine},
	"gowrap":     {"PATH", doGowrap},
	"inline":     {"PATH", doInline},
	"generic":    {"PATH", doGeneric},
	"chain":      {"PATH", doChain},
	"loop":       {"N [PATH]", doLoop},
	"cgo":        {"", doCgo},
	"rawsyscall": {"", doRawSyscall},
	"plugin":     {"PATH", doPlugin},
}

// need returns args[0] or a usage error.
func need(args []string, what string) (string, error) {
	if len(args) < 1 || args[0] == "" {
		return "", fmt.Errorf("missing %s", what)
	}
	return args[0], nil
}

// doRead: fileutil opens and reads PATH.
func doRead(args []string) error {
	path, err := need(args, "PATH")
	if err != nil {
		return err
	}
	data, err := fileutil.ReadAll(path)
	if err != nil {
		return err
	}
	fmt.Printf("read %d bytes\n", len(data))
	return nil
}

// doCreate: fileutil creates PATH and writes to it.
func doCreate(args []string) error {
	path, err := need(args, "PATH")
	if err != nil {
		return err
	}
	if err := fileutil.Create(path, []byte("created by capapp\n")); err != nil {
		return err
	}
	fmt.Printf("created %s\n", path)
	return nil
}

// doDial: netclient dials ADDR over TCP.
func doDial(args []string) error {
	addr, err := need(args, "ADDR")
	if err != nil {
		return err
	}
	if err := netclient.Dial(addr); err != nil {
		return err
	}
	fmt.Printf("dialed %s\n", addr)
	return nil
}

// doListen: netclient listens on loopback and connects to itself.
func doListen(args []string) error {
	addr, err := netclient.ListenLoopback()
	if err != nil {
		return err
	}
	fmt.Printf("listened on %s\n", addr)
	return nil
}

// doGetenv: telemetry reads environment variable NAME.
func doGetenv(args []string) error {
	name, err := need(args, "NAME")
	if err != nil {
		return err
	}
	value, ok := telemetry.Lookup(name)
	if !ok {
		return fmt.Errorf("%s is not set", name)
	}
	fmt.Printf("%s=%s\n", name, value)
	return nil
}

// doSetenv: acme.v2 parses KEY=VALUE (default CAPAPP=1), telemetry sets it.
func doSetenv(args []string) error {
	kv := "CAPAPP=1"
	if len(args) > 0 {
		kv = args[0]
	}
	s, err := acme.Parse(kv)
	if err != nil {
		return err
	}
	if err := telemetry.Set(s.Key, s.Value); err != nil {
		return err
	}
	fmt.Printf("set %s=%s\n", s.Key, os.Getenv(s.Key))
	return nil
}

// doPhoneHome: telemetry dials ADDR and sends data.
func doPhoneHome(args []string) error {
	addr, err := need(args, "ADDR")
	if err != nil {
		return err
	}
	if err := telemetry.PhoneHome(addr); err != nil {
		return err
	}
	fmt.Printf("phoned home to %s\n", addr)
	return nil
}

// doDump: telemetry writes a file at PATH.
func doDump(args []string) error {
	path, err := need(args, "PATH")
	if err != nil {
		return err
	}
	if err := telemetry.Dump(path); err != nil {
		return err
	}
	fmt.Printf("dumped to %s\n", path)
	return nil
}

// doExec: runner executes /bin/true through os/exec.
func doExec(args []string) error {
	if err := runner.True(); err != nil {
		return err
	}
	fmt.Println("ran /bin/true")
	return nil
}

// doWalk: filepath.WalkDir calls back into fileutil, which opens each file.
func doWalk(args []string) error {
	dir, err := need(args, "DIR")
	if err != nil {
		return err
	}
	files, n, err := fileutil.Walk(dir)
	if err != nil {
		return err
	}
	fmt.Printf("walked %d files, %d bytes\n", files, n)
	return nil
}

// doSort: sort.Slice calls back into go.strutil (pure computation).
func doSort(args []string) error {
	words := args
	if len(words) == 0 {
		words = []string{"pear", "Apple", "fig", "banana"}
	}
	strutil.Sort(words)
	fmt.Println(strings.Join(words, " "))
	return nil
}

// doGoroutine: fileutil opens PATH on a goroutine it starts itself.
func doGoroutine(args []string) error {
	path, err := need(args, "PATH")
	if err != nil {
		return err
	}
	data, err := fileutil.ReadAsync(path)
	if err != nil {
		return err
	}
	fmt.Printf("read %d bytes on a goroutine\n", len(data))
	return nil
}

// doGowrap: fileutil writes PATH from `go os.WriteFile(...)`; main waits
// (reading PATH itself) until the content is there.
func doGowrap(args []string) error {
	path, err := need(args, "PATH")
	if err != nil {
		return err
	}
	want := "written by a goroutine\n"
	fileutil.WriteAsync(path, []byte(want))
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if got, err := os.ReadFile(path); err == nil && string(got) == want {
			fmt.Printf("wrote %s from a goroutine\n", path)
			return nil
		}
	}
	return fmt.Errorf("%s was not written within 5s", path)
}

// doInline: fileutil.ReadFile is inlined here, so os.ReadFile's caller frame
// is main.doInline while the inline tree still names fileutil.ReadFile.
func doInline(args []string) error {
	path, err := need(args, "PATH")
	if err != nil {
		return err
	}
	data, err := fileutil.ReadFile(path)
	if err != nil {
		return err
	}
	fmt.Printf("read %d bytes through an inlined wrapper\n", len(data))
	return nil
}

// doGeneric: instantiates the generic fileutil.ReadAs for string.
func doGeneric(args []string) error {
	path, err := need(args, "PATH")
	if err != nil {
		return err
	}
	s, err := fileutil.ReadAs[string](path)
	if err != nil {
		return err
	}
	fmt.Printf("read %d bytes through a generic function\n", len(s))
	return nil
}

// doChain: main -> mono.Open -> sub.OpenFile -> os.OpenFile.
func doChain(args []string) error {
	path, err := need(args, "PATH")
	if err != nil {
		return err
	}
	f, err := mono.Open(path)
	if err != nil {
		return err
	}
	fmt.Printf("opened %s through mono and mono/sub\n", f.Name())
	return f.Close()
}

// doLoop: 8 goroutines each call fileutil.ReadSmall(PATH) N times.
func doLoop(args []string) error {
	ns, err := need(args, "N")
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(ns)
	if err != nil || n < 0 {
		return fmt.Errorf("N must be a count, not %q", ns)
	}
	path := "/dev/null"
	if len(args) > 1 {
		path = args[1]
	}
	const workers = 8
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if _, err := fileutil.ReadSmall(path); err != nil {
					errs[w] = err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	fmt.Printf("%d goroutines x %d reads of %s\n", workers, n, path)
	return nil
}

// doCgo: calls a C function; only available in cgo builds.
func doCgo(args []string) error {
	if cgoAction == nil {
		return fmt.Errorf("built without cgo")
	}
	return cgoAction(args)
}

// doRawSyscall: rawsys asks for the pid with syscall.Syscall (capability `syscall`).
func doRawSyscall(args []string) error {
	fmt.Printf("pid %d\n", rawsys.Getpid())
	return nil
}

// doPlugin: rawsys opens a Go plugin (capability `plugin`; cgo builds only).
func doPlugin(args []string) error {
	path, err := need(args, "PATH")
	if err != nil {
		return err
	}
	return rawsys.Load(path)
}

func usage() {
	names := make([]string, 0, len(actions))
	for name := range actions {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintln(os.Stderr, "usage: capapp ACTION [ARGS]")
	for _, name := range names {
		fmt.Fprintf(os.Stderr, "  capapp %s %s\n", name, actions[name].usage)
	}
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	a, ok := actions[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "capapp: unknown action %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err := a.run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "capapp %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
