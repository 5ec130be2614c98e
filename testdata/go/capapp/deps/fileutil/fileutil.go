// Package fileutil is a fake third-party module for gohook fixtures: it
// opens, reads, creates and walks files on behalf of its caller.
package fileutil

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ReadAll opens path and reads it to the end.
//
//go:noinline
func ReadAll(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Create creates (or truncates) path and writes data to it.
//
//go:noinline
func Create(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadFile is a one-line wrapper that the compiler inlines into its caller:
// no frame of fileutil exists at run time, only inline-tree entries.
func ReadFile(path string) ([]byte, error) {
	return os.ReadFile(path)
}

// ReadSmall opens path, reads up to 64 bytes and closes it.
//
//go:noinline
func ReadSmall(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var buf [64]byte
	n, err := f.Read(buf[:])
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// Walk visits every regular file under dir with filepath.WalkDir; the
// callback (code of this module, called from the standard library) opens
// and reads each file. It returns the number of files and bytes read.
func Walk(dir string) (files int, bytes int64, err error) {
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := ReadAll(path)
		if err != nil {
			return err
		}
		files++
		bytes += int64(len(data))
		return nil
	})
	return files, bytes, err
}

// ReadAsync opens and reads path on a goroutine that this module starts.
func ReadAsync(path string) ([]byte, error) {
	type result struct {
		data []byte
		err  error
	}
	ch := make(chan result)
	go func() {
		data, err := ReadAll(path)
		ch <- result{data, err}
	}()
	r := <-ch
	return r.data, r.err
}

// WriteAsync starts `go os.WriteFile(path, data, 0o600)` and returns at
// once. On the new goroutine the only frame of this module is the
// compiler-generated wrapper (WriteAsync.gowrap1 since Go 1.22,
// WriteAsync.func1 before), which the runtime hides from tracebacks as a
// wrapper: attributing that write needs the wrapper frame or gopc.
//
//go:noinline
func WriteAsync(path string, data []byte) {
	go os.WriteFile(path, data, 0o600)
}

// Bytes is the set of types ReadAs can return.
type Bytes interface{ ~string | ~[]byte }

// ReadAs is a generic reader: the main module instantiates it. It is kept
// out of line so that its shape instantiation (ReadAs[go.shape.string])
// is a function of its own in every Go release.
//
//go:noinline
func ReadAs[T Bytes](path string) (T, error) {
	data, err := ReadAll(path)
	return T(data), err
}
