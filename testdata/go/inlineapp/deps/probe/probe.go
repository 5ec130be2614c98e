// Package probe records raw runtime.Callers program counters from inside
// code that the compiler inlines into its callers. Every function here is
// small enough to be inlined; none is marked //go:noinline.
package probe

import "runtime"

// Callers fills buf with the PCs of the logical frames above
// runtime.Callers, starting with Callers itself, and returns the filled
// part. The caller provides the buffer to keep Callers under the inlining
// budget (allocating here costs 87 > 80 in Go 1.27).
func Callers(buf []uintptr) []uintptr {
	return buf[:runtime.Callers(1, buf)]
}

// Outer, Middle and Callers form a three-deep inline chain.
func Outer(buf []uintptr) []uintptr { return Middle(buf) }

// Middle is the middle link of Outer -> Middle -> Callers.
func Middle(buf []uintptr) []uintptr { return Callers(buf) }

// Generic is a generic function that records PCs; main instantiates it.
func Generic[T any](x T, buf []uintptr) []uintptr {
	_ = x
	return Callers(buf)
}

// Recorder has a method used as a method value (Recorder.Snap-fm).
type Recorder struct{ Hits int }

// Snap records PCs; called through a method value it runs under the
// compiler-generated wrapper Recorder.Snap-fm.
func (r *Recorder) Snap(buf []uintptr) []uintptr {
	r.Hits++
	return Callers(buf)
}

// Value is a type whose pointer method set is promoted through embedding.
type Value struct{ Recorder }
