// Command oracle prints, as one JSON document, what Go's own debug/elf,
// debug/gosym and debug/buildinfo packages say about a Go binary.
//
// It is the independent reference that gohook's Python parser is tested
// against: nothing here shares code or assumptions with gohook.
//
// Usage:
//
//	oracle [-samples N] BINARY
//
// The function table needs the value of the runtime.text symbol (the
// pclntab's own textStart word is written as 0 since Go 1.26, and
// debug/gosym uses the address passed to NewLineTable for 1.18+ tables).
// Binaries linked with -s have no symbol table; for them the document
// carries "table_error" and no functions, while build info is still read.
package main

import (
	"debug/buildinfo"
	"debug/elf"
	"debug/gosym"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Module mirrors debug.Module with stable JSON names.
type Module struct {
	Path    string  `json:"path"`
	Version string  `json:"version"`
	Sum     string  `json:"sum"`
	Replace *Module `json:"replace"`
}

// BuildInfo mirrors debug.BuildInfo; settings keep their order.
type BuildInfo struct {
	GoVersion string      `json:"go_version"`
	Path      string      `json:"path"`
	Main      Module      `json:"main"`
	Deps      []Module    `json:"deps"`
	Settings  [][2]string `json:"settings"`
}

// Function is one gosym.Table.Funcs entry with the file:line at its entry.
type Function struct {
	Name  string `json:"name"`
	Entry uint64 `json:"entry"`
	End   uint64 `json:"end"`
	File  string `json:"file"`
	Line  int    `json:"line"`
}

// Sample is PCToLine/PCToFunc at one program counter.
type Sample struct {
	PC       uint64 `json:"pc"`
	File     string `json:"file"`
	Line     int    `json:"line"`
	Function string `json:"function"`
}

// Document is the whole output.
type Document struct {
	Binary         string     `json:"binary"`
	BuildInfo      *BuildInfo `json:"build_info"`
	BuildInfoError string     `json:"build_info_error,omitempty"`
	TextStart      uint64     `json:"text_start"`
	TextSection    uint64     `json:"text_section"`
	PclntabMagic   string     `json:"pclntab_magic"`
	Functions      []Function `json:"functions"`
	Samples        []Sample   `json:"samples"`
	TableError     string     `json:"table_error,omitempty"`
}

func convertModule(m *Module, path, version, sum string) {
	m.Path, m.Version, m.Sum = path, version, sum
}

func readBuildInfo(path string, doc *Document) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		doc.BuildInfoError = err.Error()
		return
	}
	out := &BuildInfo{GoVersion: bi.GoVersion, Path: bi.Path, Deps: []Module{}, Settings: [][2]string{}}
	convertModule(&out.Main, bi.Main.Path, bi.Main.Version, bi.Main.Sum)
	if bi.Main.Replace != nil {
		out.Main.Replace = &Module{}
		convertModule(out.Main.Replace, bi.Main.Replace.Path, bi.Main.Replace.Version, bi.Main.Replace.Sum)
	}
	for _, d := range bi.Deps {
		m := Module{}
		convertModule(&m, d.Path, d.Version, d.Sum)
		if d.Replace != nil {
			m.Replace = &Module{}
			convertModule(m.Replace, d.Replace.Path, d.Replace.Version, d.Replace.Sum)
		}
		out.Deps = append(out.Deps, m)
	}
	for _, s := range bi.Settings {
		out.Settings = append(out.Settings, [2]string{s.Key, s.Value})
	}
	doc.BuildInfo = out
}

// textStart returns the value of the runtime.text symbol.
func textStart(f *elf.File) (uint64, error) {
	syms, err := f.Symbols()
	if err != nil {
		return 0, fmt.Errorf("no symbol table (stripped binary?): %w", err)
	}
	for _, s := range syms {
		if s.Name == "runtime.text" {
			return s.Value, nil
		}
	}
	return 0, errors.New("no runtime.text symbol")
}

func sectionData(f *elf.File, names ...string) ([]byte, error) {
	for _, n := range names {
		if s := f.Section(n); s != nil {
			return s.Data()
		}
	}
	return nil, fmt.Errorf("no section %s", strings.Join(names, " or "))
}

func readTable(path string, nsamples int, doc *Document) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if s := f.Section(".text"); s != nil {
		doc.TextSection = s.Addr
	}
	pclntab, err := sectionData(f, ".gopclntab", ".data.rel.ro.gopclntab")
	if err != nil {
		return err
	}
	if len(pclntab) >= 4 {
		doc.PclntabMagic = fmt.Sprintf("0x%08x", uint32(pclntab[0])|uint32(pclntab[1])<<8|uint32(pclntab[2])<<16|uint32(pclntab[3])<<24)
	}
	text, err := textStart(f)
	if err != nil {
		return err
	}
	doc.TextStart = text
	// .gosymtab is empty (or absent) since Go 1.3; NewTable accepts nil.
	var symtab []byte
	if s := f.Section(".gosymtab"); s != nil {
		if symtab, err = s.Data(); err != nil {
			return err
		}
	}
	table, err := gosym.NewTable(symtab, gosym.NewLineTable(pclntab, text))
	if err != nil {
		return err
	}
	if len(table.Funcs) == 0 {
		return errors.New("gosym found no functions")
	}
	for i := range table.Funcs {
		fn := &table.Funcs[i]
		file, line, _ := table.PCToLine(fn.Entry)
		doc.Functions = append(doc.Functions, Function{Name: fn.Name, Entry: fn.Entry, End: fn.End, File: file, Line: line})
	}
	sort.SliceStable(doc.Functions, func(i, j int) bool { return doc.Functions[i].Entry < doc.Functions[j].Entry })
	doc.Samples = samples(table, nsamples)
	return nil
}

// samples picks about n program counters spread over all function bodies:
// a fixed odd stride over the text span (so offsets do not all share one
// alignment), plus the last byte of every 8th function. Deterministic.
func samples(table *gosym.Table, n int) []Sample {
	funcs := table.Funcs
	lo, hi := funcs[0].Entry, funcs[len(funcs)-1].End
	stride := (hi - lo) / uint64(n)
	if stride < 1 {
		stride = 1
	}
	stride |= 1
	pcs := []uint64{}
	for pc := lo; pc < hi; pc += stride {
		pcs = append(pcs, pc)
	}
	for i := 0; i < len(funcs); i += 8 {
		if funcs[i].End > funcs[i].Entry {
			pcs = append(pcs, funcs[i].End-1)
		}
	}
	sort.Slice(pcs, func(i, j int) bool { return pcs[i] < pcs[j] })
	out := []Sample{}
	var last uint64
	for i, pc := range pcs {
		if i > 0 && pc == last {
			continue
		}
		last = pc
		file, line, fn := table.PCToLine(pc)
		if fn == nil {
			continue
		}
		if table.PCToFunc(pc) != fn {
			panic(fmt.Sprintf("PCToFunc and PCToLine disagree at %#x", pc))
		}
		out = append(out, Sample{PC: pc, File: file, Line: line, Function: fn.Name})
	}
	return out
}

func main() {
	nsamples := flag.Int("samples", 3000, "number of strided PC samples")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: oracle [-samples N] BINARY")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	path := flag.Arg(0)
	doc := &Document{Binary: path, Functions: []Function{}, Samples: []Sample{}}
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintln(os.Stderr, "oracle:", err)
		os.Exit(1)
	}
	readBuildInfo(path, doc)
	if err := readTable(path, *nsamples, doc); err != nil {
		doc.TableError = err.Error()
		doc.Functions, doc.Samples = []Function{}, []Sample{}
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(doc); err != nil {
		fmt.Fprintln(os.Stderr, "oracle:", err)
		os.Exit(1)
	}
}
