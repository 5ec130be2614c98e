// Command attachapp runs a sequence of steps, separated by "+" arguments,
// for gohook's live attach tests (tests/test_attach_live.py):
//
//	attachapp wait + read PATH + create PATH
//
// It complements capapp with what those tests need beyond one action per
// process: a process that waits (to be attached to by pid, or to run side
// by side with another), a program to exec whose side effect is visible,
// standard-library callbacks into a dependency that make hooked calls, and
// a timed loop. Each step prints one line on stdout when it is done. Exit
// status: 0 success, 1 failure (message on stderr), 2 bad usage.
package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acme/spawn"
	"github.com/acme/visit"
)

type step struct {
	usage string
	nargs int // -1: any number
	run   func(args []string) error
}

var steps = map[string]step{
	"wait":   {"", 0, doWait},
	"read":   {"PATH", 1, doRead},
	"create": {"PATH", 1, doCreate},
	"exec":   {"PATH", 1, doExec},
	"walk":   {"DIR", 1, doWalk},
	"sort":   {"NAME...", -1, doSort},
	"loop":   {"SECONDS PATH", 2, doLoop},
}

// doWait: says "waiting" and blocks until a line (or EOF) arrives on stdin.
func doWait(args []string) error {
	fmt.Printf("waiting pid %d\n", os.Getpid())
	_, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && err.Error() != "EOF" {
		return err
	}
	fmt.Println("woke")
	return nil
}

// doRead: visit opens and reads PATH.
func doRead(args []string) error {
	n, err := visit.ReadSmall(args[0])
	if err != nil {
		return err
	}
	fmt.Printf("read %d bytes\n", n)
	return nil
}

// doCreate: visit creates PATH.
func doCreate(args []string) error {
	if err := visit.Create(args[0], []byte("created by attachapp\n")); err != nil {
		return err
	}
	fmt.Printf("created %s\n", args[0])
	return nil
}

// doExec: spawn runs PATH.
func doExec(args []string) error {
	if err := spawn.Run(args[0]); err != nil {
		return err
	}
	fmt.Printf("ran %s\n", args[0])
	return nil
}

// doWalk: main calls filepath.WalkDir with visit.File as the callback.
func doWalk(args []string) error {
	if err := filepath.WalkDir(args[0], visit.File); err != nil {
		return err
	}
	fmt.Printf("walked %d files\n", visit.Files)
	return nil
}

// doSort: main calls sort.Slice with visit's less function, which reads
// the environment.
func doSort(args []string) error {
	names := append([]string(nil), args...)
	sort.Slice(names, visit.ByEnv(names))
	fmt.Printf("sorted %s\n", strings.Join(names, " "))
	return nil
}

// doLoop: 8 goroutines call visit.ReadSmall(PATH) until SECONDS have passed.
func doLoop(args []string) error {
	seconds, err := strconv.ParseFloat(args[0], 64)
	if err != nil || seconds < 0 {
		return fmt.Errorf("SECONDS must be a duration in seconds, not %q", args[0])
	}
	deadline := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	const workers = 8
	var calls int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if _, err := visit.ReadSmall(args[1]); err != nil {
					errs[w] = err
					return
				}
				atomic.AddInt64(&calls, 1)
			}
		}(w)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	fmt.Printf("loop %d goroutines %d calls\n", workers, atomic.LoadInt64(&calls))
	return nil
}

func usage() {
	names := make([]string, 0, len(steps))
	for name := range steps {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintln(os.Stderr, "usage: attachapp STEP [ARGS] [+ STEP [ARGS]]...")
	for _, name := range names {
		fmt.Fprintf(os.Stderr, "  %s %s\n", name, steps[name].usage)
	}
}

func main() {
	var groups [][]string
	cur := []string{}
	for _, a := range os.Args[1:] {
		if a == "+" {
			groups = append(groups, cur)
			cur = []string{}
			continue
		}
		cur = append(cur, a)
	}
	groups = append(groups, cur)
	for _, g := range groups {
		if len(g) == 0 {
			usage()
			os.Exit(2)
		}
		s, ok := steps[g[0]]
		if !ok || (s.nargs >= 0 && len(g)-1 != s.nargs) {
			fmt.Fprintf(os.Stderr, "attachapp: bad step %q\n", strings.Join(g, " "))
			usage()
			os.Exit(2)
		}
	}
	for _, g := range groups {
		if err := steps[g[0]].run(g[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "attachapp %s: %v\n", g[0], err)
			os.Exit(1)
		}
	}
}
