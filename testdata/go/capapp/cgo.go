//go:build cgo

package main

/*
static int gohook_add(int a, int b) { return a + b; }
*/
import "C"

import "fmt"

func init() {
	cgoAction = func(args []string) error {
		fmt.Printf("C says 2+3=%d\n", int(C.gohook_add(2, 3)))
		return nil
	}
}
