// Package fanout is a fake "parallel helpers" module for gohook's
// adversarial suite (technique 9, concurrency): Spray releases 8 goroutines
// at once, each writing n files into dir as fast as it can, hoping that one
// write slips through while enforcement is busy with another.
package fanout

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Workers is how many goroutines Spray starts.
const Workers = 8

// Spray writes dir/w<g>-<i> for g < Workers, i < n from Workers goroutines
// released together; it returns the number of files written.
//
//go:noinline
func Spray(dir string, n int) int {
	start := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	written := 0
	for g := 0; g < Workers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			<-start
			for i := 0; i < n; i++ {
				if os.WriteFile(filepath.Join(dir, fmt.Sprintf("w%d-%d", g, i)), []byte("x"), 0o644) == nil {
					mu.Lock()
					written++
					mu.Unlock()
				}
			}
		}(g)
	}
	close(start)
	wg.Wait()
	return written
}
