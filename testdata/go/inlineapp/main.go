// Command inlineapp is the runtime's own answer to "which logical frames
// does this PC stand for": at points inside inlined code it records raw
// runtime.Callers PCs and the frames runtime.CallersFrames gives for them,
// and prints both as one JSON document.
//
// Since Go 1.21 (and, with the same encoding, in 1.19) runtime.Callers
// returns one PC per logical frame: for a frame inlined into its parent,
// the parent's PC is entry+parentPc+1, so CallersFrames yields exactly one
// frame per PC. Wrapper functions (method-value -fm wrappers, promoted
// methods) are elided by the runtime.
//
// "main_main" is the run-time address of main.main, so that a test can
// compute the load bias of a PIE build.
package main

import (
	"encoding/json"
	"os"
	"reflect"
	"runtime"

	"github.com/acme/probe"
)

type frame struct {
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int    `json:"line"`
	Entry    uint64 `json:"entry"`
}

type point struct {
	Name   string   `json:"name"`
	PCs    []uint64 `json:"pcs"`
	Frames []frame  `json:"frames"`
}

type document struct {
	GoVersion string  `json:"go_version"`
	MainMain  uint64  `json:"main_main"`
	Points    []point `json:"points"`
}

// record turns raw PCs into a point; it is not inlined so that it never
// shows up inside the recorded stacks.
//
//go:noinline
func record(name string, pcs []uintptr) point {
	p := point{Name: name, PCs: []uint64{}, Frames: []frame{}}
	for _, pc := range pcs {
		p.PCs = append(p.PCs, uint64(pc))
	}
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		p.Frames = append(p.Frames, frame{f.Function, f.File, f.Line, uint64(f.Entry)})
		if !more {
			break
		}
	}
	return p
}

// viaWrapper: probe.Callers (a dependency wrapper) inlined into main.
//
//go:noinline
func viaWrapper() []uintptr { return probe.Callers(make([]uintptr, 64)) }

// viaChain: probe.Outer -> probe.Middle -> probe.Callers, all inlined.
//
//go:noinline
func viaChain() []uintptr { return probe.Outer(make([]uintptr, 64)) }

// viaGeneric: a generic dependency function instantiated here.
//
//go:noinline
func viaGeneric() []uintptr { return probe.Generic[int](7, make([]uintptr, 64)) }

// viaClosure: a closure called directly, inlined with what it calls.
//
//go:noinline
func viaClosure() []uintptr {
	f := func() []uintptr { return probe.Callers(make([]uintptr, 64)) }
	return f()
}

// invoke calls f; a method value passed here runs under the compiler's
// -fm wrapper, into which the method itself is inlined. The runtime elides
// that wrapper frame.
//
//go:noinline
func invoke(f func([]uintptr) []uintptr) []uintptr { return f(make([]uintptr, 64)) }

// viaMethodValue: a method value, called through the -fm wrapper.
//
//go:noinline
func viaMethodValue(r *probe.Recorder) []uintptr { return invoke(r.Snap) }

// viaPromoted: a promoted method called through an interface, which goes
// through the compiler-generated (*Value).Snap wrapper.
//
//go:noinline
func viaPromoted(s interface{ Snap([]uintptr) []uintptr }) []uintptr {
	return s.Snap(make([]uintptr, 64))
}

// inlinedLocal is a local helper inlined into main.main.
func inlinedLocal() []uintptr { return probe.Middle(make([]uintptr, 64)) }

func main() {
	doc := document{GoVersion: runtime.Version(), MainMain: uint64(reflect.ValueOf(main).Pointer())}
	doc.Points = append(doc.Points,
		record("wrapper", viaWrapper()),
		record("chain", viaChain()),
		record("generic", viaGeneric()),
		record("closure", viaClosure()),
		record("method_value", viaMethodValue(&probe.Recorder{})),
		record("promoted", viaPromoted(&probe.Value{})),
		record("local", inlinedLocal()),
	)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(doc); err != nil {
		os.Stderr.WriteString("inlineapp: " + err.Error() + "\n")
		os.Exit(1)
	}
}
