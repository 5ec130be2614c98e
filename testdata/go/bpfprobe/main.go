// Command bpfprobe is the fixture of gohook's BPF tests and benchmark.
//
//	bpfprobe bench N DEPTH   github.com/acme/lib calls os.Getenv N times at DEPTH
//	                         extra frames; prints {"calls", "ns", "ns_per_call"}
//	bpfprobe wait            prints "ready", then reads one line from stdin and
//	                         has lib call os.Getenv once (attach to a running pid)
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/acme/lib"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bpfprobe bench N DEPTH | wait")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "bench":
		if len(os.Args) != 4 {
			fmt.Fprintln(os.Stderr, "usage: bpfprobe bench N DEPTH")
			os.Exit(2)
		}
		n, err1 := strconv.Atoi(os.Args[2])
		depth, err2 := strconv.Atoi(os.Args[3])
		if err1 != nil || err2 != nil || n <= 0 || depth < 0 {
			fmt.Fprintln(os.Stderr, "bpfprobe: N and DEPTH must be counts")
			os.Exit(2)
		}
		d := lib.Loop("GOHOOK_BENCH", n, depth)
		out, _ := json.Marshal(map[string]any{"calls": n, "ns": d.Nanoseconds(),
			"ns_per_call": float64(d.Nanoseconds()) / float64(n)})
		fmt.Println(string(out))
	case "wait":
		fmt.Println("ready")
		bufio.NewReader(os.Stdin).ReadString('\n')
		lib.Loop("GOHOOK_WAIT", 1, 0)
		fmt.Println("done")
	default:
		fmt.Fprintf(os.Stderr, "bpfprobe: unknown action %q\n", os.Args[1])
		os.Exit(2)
	}
}
