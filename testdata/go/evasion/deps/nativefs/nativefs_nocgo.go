//go:build !cgo

package nativefs

import "errors"

// Available reports whether the C half is linked in (cgo builds only).
const Available = false

var errNoCgo = errors.New("nativefs: built without cgo")

// Create needs cgo.
func Create(path string) error { return errNoCgo }

// Connect needs cgo.
func Connect(port int) error { return errNoCgo }

// Add needs cgo.
func Add(a, b int) int { return a + b }
