// Command oracle prints, as one JSON document, what Go's own debug/elf,
// debug/gosym and debug/buildinfo packages say about a Go binary.
//
// It is the independent reference that gohook's Python parser is tested
// against: nothing here shares code or assumptions with gohook.
//
// Usage:
//
//	oracle [-samples N] [-text ADDR] BINARY
//
// The function table needs the value of the runtime.text symbol (the
// pclntab's own textStart word is written as 0 since Go 1.26, and
// debug/gosym uses the address passed to NewLineTable for 1.18+ tables).
// Binaries linked with -s have no symbol table; for them the document
// carries "table_error" and no functions, while build info is still read,
// unless -text gives the text start (the caller's responsibility: for a
// statically, internally linked binary it is the .text section address;
// with cgo, C start-up code comes first and it is not).
package main

import (
	"debug/buildinfo"
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
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

// Function is one gosym.Table.Funcs entry with the file:line at its entry,
// plus the funcID and flag bytes of its _func record (see funcAttrs).
type Function struct {
	Name   string `json:"name"`
	Entry  uint64 `json:"entry"`
	End    uint64 `json:"end"`
	File   string `json:"file"`
	Line   int    `json:"line"`
	FuncID int    `json:"func_id"`        // -1: not in this format (or Go < 1.12)
	Flag   *int   `json:"flag,omitempty"` // absent before Go 1.16; a padding byte (0) in 1.16
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
	TextStartFrom  string     `json:"text_start_from"`
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

func readTable(path string, nsamples int, textOverride uint64, doc *Document) error {
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
	text, from := textOverride, "-text flag"
	if textOverride == 0 {
		if text, err = textStart(f); err != nil {
			return err
		}
		from = "runtime.text symbol"
	}
	doc.TextStart, doc.TextStartFrom = text, from
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
	fattrs, err := funcAttrs(pclntab, text, goMinor(doc))
	if err != nil {
		return err
	}
	for i := range table.Funcs {
		fn := &table.Funcs[i]
		file, line, _ := table.PCToLine(fn.Entry)
		a, ok := fattrs[fn.Entry]
		if !ok {
			return fmt.Errorf("no _func record with entry %#x (%s)", fn.Entry, fn.Name)
		}
		doc.Functions = append(doc.Functions, Function{
			Name: fn.Name, Entry: fn.Entry, End: fn.End, File: file, Line: line, FuncID: a.funcID, Flag: a.flag,
		})
	}
	sort.SliceStable(doc.Functions, func(i, j int) bool { return doc.Functions[i].Entry < doc.Functions[j].Entry })
	doc.Samples = samples(table, nsamples)
	return nil
}

// attrs are the funcID and flag bytes of one _func record; -1 / nil when
// the format has no such field.
type attrs struct {
	funcID int
	flag   *int
}

// funcAttrs reads the funcID and flag bytes of every _func record, keyed by
// entry address. debug/gosym does not expose them, so this walks the table
// the way the runtime of each release does (runtime/runtime2.go _func,
// runtime/symtab.go):
//
//	Go 1.18+ (magic 0xfffffff0, 0xfffffff1): header words nfunc, nfiles,
//	  textStart, funcnameOffset, cuOffset, filetabOffset, pctabOffset,
//	  pclnOffset; functab at pclnOffset: pairs (entryoff u32, funcoff u32);
//	  _func at pclnOffset+funcoff: entryoff u32 @0; funcID, flag u8 at
//	  @36/@37 (1.18-1.19) or @40/@41 (1.20+, after startLine).
//	Go 1.16-1.17 (0xfffffffa): words nfunc, nfiles, funcnameOffset,
//	  cuOffset, filetabOffset, pctabOffset, pclnOffset; functab pairs of
//	  uintptr (entry, funcoff); _func: entry uintptr @0, funcID @40, flag
//	  @41 (Go 1.17 added the flag; in 1.16 that byte is padding, 0).
//	Go 1.2-1.15 (0xfffffffb): nfunc word at 8, functab at 8+ptrsize: pairs
//	  of uintptr (entry, funcoff from the table start); _func: entry @0,
//	  funcID @36 since Go 1.12 (goMinor must say so), no flag.
func funcAttrs(tab []byte, text uint64, goMinor int) (map[uint64]attrs, error) {
	if len(tab) < 8+8*8 {
		return nil, errors.New("pclntab too short")
	}
	if tab[7] != 8 {
		return nil, fmt.Errorf("pointer size %d: only 64-bit binaries are supported", tab[7])
	}
	le := binary.LittleEndian
	word := func(k int) uint64 { return le.Uint64(tab[8+8*k:]) }
	u8 := func(off uint64) (int, error) {
		if off >= uint64(len(tab)) {
			return 0, fmt.Errorf("_func field at %#x out of range", off)
		}
		return int(tab[off]), nil
	}
	nfunc := word(0)
	var base, stride, idOff, flagOff uint64 // functab start, entry size; field offsets (0 = absent)
	var wide bool                           // functab holds uintptr entries (absolute) instead of u32 offsets
	magic := le.Uint32(tab)
	switch magic {
	case 0xfffffff1:
		base, stride, idOff, flagOff = word(7), 8, 40, 41
	case 0xfffffff0:
		base, stride, idOff, flagOff = word(7), 8, 36, 37
	case 0xfffffffa:
		base, stride, idOff, flagOff, wide = word(6), 16, 40, 41, true
	case 0xfffffffb:
		base, stride, wide = 16, 16, true
		if goMinor >= 12 {
			idOff = 36
		}
	default:
		return nil, fmt.Errorf("pclntab magic %#x", magic)
	}
	out := make(map[uint64]attrs, nfunc)
	for i := uint64(0); i < nfunc; i++ {
		p := base + stride*i
		if p+stride > uint64(len(tab)) {
			return nil, fmt.Errorf("functab entry %d out of range", i)
		}
		var entry, rec uint64
		if wide {
			entry = le.Uint64(tab[p:])
			rec = le.Uint64(tab[p+8:])
			if magic == 0xfffffffa {
				rec += base // 1.16-1.17: funcoff is relative to the pcln table
			}
		} else {
			entry = text + uint64(le.Uint32(tab[p:]))
			rec = base + uint64(le.Uint32(tab[p+4:]))
		}
		if rec+8 > uint64(len(tab)) {
			return nil, fmt.Errorf("_func record %d out of range", i)
		}
		if wide && le.Uint64(tab[rec:]) != entry || !wide && text+uint64(le.Uint32(tab[rec:])) != entry {
			return nil, fmt.Errorf("_func record %d: entry does not match the functab", i)
		}
		a := attrs{funcID: -1}
		if idOff != 0 {
			v, err := u8(rec + idOff)
			if err != nil {
				return nil, err
			}
			a.funcID = v
		}
		if flagOff != 0 {
			v, err := u8(rec + flagOff)
			if err != nil {
				return nil, err
			}
			a.flag = &v
		}
		out[entry] = a
	}
	return out, nil
}

// goMinor is the Go 1.x minor version from build info, or -1.
func goMinor(doc *Document) int {
	if doc.BuildInfo == nil {
		return -1
	}
	var minor int
	if _, err := fmt.Sscanf(doc.BuildInfo.GoVersion, "go1.%d", &minor); err != nil {
		return -1
	}
	return minor
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
	text := flag.Uint64("text", 0, "text start address to use instead of the runtime.text symbol")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: oracle [-samples N] [-text ADDR] BINARY")
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
	if err := readTable(path, *nsamples, *text, doc); err != nil {
		doc.TableError = err.Error()
		doc.Functions, doc.Samples = []Function{}, []Sample{}
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(doc); err != nil {
		fmt.Fprintln(os.Stderr, "oracle:", err)
		os.Exit(1)
	}
}
