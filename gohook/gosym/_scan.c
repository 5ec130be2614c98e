/* gohook.gosym._scan: the machine-code scanner of gohook/static/callgraph.py in C (issue 17 §6).

Same results as callgraph.scan_code_python (the reference, and the fallback when this module is not built or
does not load): for each function, the direct calls, the tail jumps leaving it, the number of indirect
calls, the `syscall` addresses and the `lea reg, [rip +/- disp]` loads, in instruction order.  It walks the
same capstone instructions (x86-64, SKIPDATA on, DETAIL off, cs_disasm_iter over exactly the function's
bytes) and reads the targets from the same mnemonic and op_str text with the same rules as the Python, so
the two agree by construction; tests/static/test_scan_accel.py checks it on every function of fixtures and
real binaries and on handcrafted bytes.  Where op_str is not in the form capstone prints (never seen, but
possible in principle), the number is handed to Python's own int(op_str, 16), as the Python scanner does.

    scan_many(buffer, base, entries, ends, factory=None) -> list
    rel32_sites(buffer, base, entries, ends, targets) -> list of (address, target)
    frame_pointer_saves(buffer, base, entries, ends) -> bytes (1: the function saves RBP before any call)
    words_present(buffer, words) -> list of the words stored in buffer (8 bytes little-endian, any offset)

scans the functions [entries[i], ends[i]) out of one bytes-like `buffer` whose first byte is at virtual
address `base` (a view of the text segment: no copy per function), and returns for each
factory(calls, tail_jumps, indirect_calls, syscalls, address_refs), or that tuple without a factory: calls,
tail_jumps and address_refs packed as callgraph.FunctionScan holds them (16 bytes a pair: address, then
target modulo 2**64, little-endian), syscalls a tuple of addresses.
Python is not entered per function or per instruction.

Two phases per chunk of functions (about CHUNK_BYTES of code): disassembly, into a C array of events,
runs without the GIL; then the Python objects are built, with it.  So a Python thread can disassemble
while another runs Python code (callgraph.CallGraph.start_prescan: the hook sites are found meanwhile).

Which libcapstone: the one the capstone Python package has already loaded, found by its path
(capstone._cs._name) and dlopen()ed, with its entry points taken by dlsym.  Not linked with -lcapstone and
an rpath, because:
  - the wheel ships lib/libcapstone.so whose SONAME is libcapstone.so.5: a link records that SONAME as
    DT_NEEDED, no file of that name exists next to it, and the extension would not load at all;
  - the binding may have loaded another copy (LIBCAPSTONE_PATH, a system library): dlopen by its path
    gives exactly that copy (already mapped: dlopen only takes a reference), so both scanners disassemble
    with one library, and no rpath into site-packages breaks when the venv moves;
  - a missing or unloadable library is then an ImportError at import, and callgraph falls back to Python.
The headers (struct cs_insn, constants) come from the capstone package at build time (setup.py); the
loaded library must report the same API version (cs_version), else the import fails the same way.

State (module-level, for the life of the process): one capstone handle, its cs_insn buffer, and the lock
that serialises their use.  cs_open costs ~0.1 ms and the scanner is called for tens of thousands of
functions, so the handle is made once at import (callgraph.py does the same with its Python SCANNER);
cs_disasm_iter keeps no state between calls.  The handle is used only while holding `lock`, also without
the GIL, so two threads never share it at once; a forked child gets its own copy of all three.
*/

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>

#include <dlfcn.h>
#include <endian.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <capstone/capstone.h>

/* Code scanned per GIL release: large enough that switching costs nothing, small enough that the event
   array stays small (a few hundred KB) and another thread gets the GIL back often. */
#define CHUNK_BYTES (512 * 1024)

typedef cs_err (*cs_open_fn)(cs_arch, cs_mode, csh *);
typedef cs_err (*cs_option_fn)(csh, cs_opt_type, size_t);
typedef cs_insn *(*cs_malloc_fn)(csh);
typedef bool (*cs_disasm_iter_fn)(csh, const uint8_t **, size_t *, uint64_t *, cs_insn *);
typedef cs_err (*cs_errno_fn)(csh);
typedef unsigned int (*cs_version_fn)(int *, int *);

static struct {
    cs_disasm_iter_fn disasm_iter;
    cs_errno_fn errnum;
    csh handle;
    csh strict; /* the same without SKIPDATA: stops at bytes that are no instruction (callgraph.DECODER) */
    cs_insn *insn;
    PyThread_type_lock lock;
} cs;

/* -- events: what phase 1 finds, phase 2 turns into Python objects ------------------------------------------- */

enum kind {
    EV_CALL,      /* call to value */
    EV_JMP,       /* jmp to value, outside the function */
    EV_LEA,       /* lea loading address + size + disp (disp signed, in value) */
    EV_SYSCALL,   /* syscall */
    EV_SLOW_CALL, /* call "0x...", op_str (in text) not in capstone's usual form: Python's int() decides */
    EV_SLOW_JMP,  /* the same for a jmp */
    EV_SLOW_LEA,  /* lea with a "[rip " operand whose displacement is not in the usual form */
};

typedef struct {
    uint64_t address;
    uint64_t value;   /* target, or the signed displacement of EV_LEA */
    uint32_t text;    /* EV_SLOW_*: offset of the op_str copy in the text buffer */
    uint16_t size;    /* instruction size */
    uint8_t kind;
} event;

typedef struct {
    size_t first_event; /* this function's events are [first_event, next function's first_event) */
    long indirect;
    cs_err error;       /* CS_ERR_OK, or what disasm_lite would raise as CsError */
} function_result;

typedef struct {
    event *ev;
    size_t n, cap;
    char *text;
    size_t text_n, text_cap;
    int oom;
} events;

static void push(events *e, uint8_t kind, const cs_insn *in, uint64_t value) {
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 4096;
        event *ev = realloc(e->ev, cap * sizeof(event));
        if (ev == NULL) {
            e->oom = 1;
            return;
        }
        e->ev = ev;
        e->cap = cap;
    }
    event *v = &e->ev[e->n++];
    v->address = in->address;
    v->value = value;
    v->size = in->size;
    v->kind = kind;
    v->text = 0;
    if (kind >= EV_SLOW_CALL) {
        size_t len = strlen(in->op_str) + 1;
        if (e->text_n + len > e->text_cap) {
            size_t cap = e->text_cap ? 2 * e->text_cap : 4096;
            while (cap < e->text_n + len) cap *= 2;
            char *t = realloc(e->text, cap);
            if (t == NULL) {
                e->oom = 1;
                return;
            }
            e->text = t;
            e->text_cap = cap;
        }
        memcpy(e->text + e->text_n, in->op_str, len);
        v->text = (uint32_t)e->text_n;
        e->text_n += len;
    }
}

/* -- phase 1: disassemble, no Python -------------------------------------------------------------------------- */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Python's int(s[:n], 16) for the form capstone prints: an optional 0x / 0X, then 1 to 16 hex digits and
   nothing else.  0 (and *out) on that form; -1 on any other: the caller then leaves the verdict to
   Python's int() (an EV_SLOW_* event), so no other spelling is judged here. */
static int hex_fast(const char *s, size_t n, uint64_t *out) {
    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        n -= 2;
    }
    if (n == 0 || n > 16) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int d = hexval(s[i]);
        if (d < 0) return -1;
        v = (v << 4) | (uint64_t)d;
    }
    *out = v;
    return 0;
}

/* The displacement part of a lea's op_str, as the Python takes it apart:
       at = op_str.find("[rip ");  if at >= 0 and op_str.endswith("]"):
           sign, _, disp = op_str[at + 5 : -1].partition(" ");  off = int(disp, 16)
   Returns 0 when there is no "[rip ...]" operand, else 1 with *disp, *n and *plus (sign == "+"). */
static int lea_operand(const char *op, const char **disp, size_t *n, int *plus) {
    size_t len = strlen(op);
    const char *at = strstr(op, "[rip ");
    if (at == NULL || len == 0 || op[len - 1] != ']') return 0;
    const char *inner = at + 5, *inner_end = op + len - 1; /* "[rip " cannot overlap the final "]" */
    const char *space = memchr(inner, ' ', (size_t)(inner_end - inner));
    *disp = space ? space + 1 : inner_end; /* no space: partition gives disp "" */
    *n = (size_t)(inner_end - *disp);
    *plus = space != NULL && space - inner == 1 && inner[0] == '+';
    return 1;
}

static void scan_function(events *e, const uint8_t *code, size_t size, uint64_t entry, function_result *r) {
    unsigned __int128 end = (unsigned __int128)entry + size; /* Python ints do not wrap */
    const uint8_t *p = code;
    size_t left = size, count = 0;
    uint64_t address = entry;
    cs_insn *in = cs.insn;
    r->first_event = e->n;
    r->indirect = 0;
    r->error = CS_ERR_OK;
    while (cs.disasm_iter(cs.handle, &p, &left, &address, in)) {
        count++;
        const char *m = in->mnemonic, *op = in->op_str;
        uint64_t v;
        if (m[0] == 'l' && strcmp(m, "lea") == 0) {
            const char *disp;
            size_t n;
            int plus;
            if (lea_operand(op, &disp, &n, &plus)) {
                if (hex_fast(disp, n, &v) == 0 && v < ((uint64_t)1 << 62))
                    push(e, EV_LEA, in, plus ? v : (uint64_t)(-(int64_t)v));
                else
                    push(e, EV_SLOW_LEA, in, 0);
            }
        } else if (m[0] == 'c' && strcmp(m, "call") == 0) {
            if (op[0] == '0' && op[1] == 'x') { /* op_str.startswith("0x") */
                if (hex_fast(op, strlen(op), &v) == 0)
                    push(e, EV_CALL, in, v);
                else
                    push(e, EV_SLOW_CALL, in, 0);
            } else {
                r->indirect++;
            }
        } else if (m[0] == 'j' && strcmp(m, "jmp") == 0) {
            if (op[0] == '0' && op[1] == 'x') {
                if (hex_fast(op, strlen(op), &v) != 0)
                    push(e, EV_SLOW_JMP, in, 0);
                else if (!(v >= entry && (unsigned __int128)v < end)) /* not entry <= target < end */
                    push(e, EV_JMP, in, v);
            }
        } else if (m[0] == 's' && strcmp(m, "syscall") == 0) {
            push(e, EV_SYSCALL, in, 0);
        }
    }
    /* disasm_lite raises CsError when cs_disasm returns nothing with an error set (and only then) */
    if (size > 0 && count == 0 && cs.errnum(cs.handle) != CS_ERR_OK) r->error = cs.errnum(cs.handle);
}

/* -- phase 2: Python objects ------------------------------------------------------------------------------------ */

/* int(s, 16) by Python's own int(): a new reference, or NULL with its ValueError set. */
static PyObject *int_slow(const char *s, size_t n) {
    PyObject *text = PyUnicode_DecodeASCII(s, (Py_ssize_t)n, NULL);
    if (text == NULL) return NULL;
    PyObject *v = PyLong_FromUnicodeObject(text, 16);
    Py_DECREF(text);
    return v;
}

/* A Python int from a signed 128-bit value (an address plus a displacement: never beyond 65 bits). */
static PyObject *long_from_i128(__int128 v) {
    if (v >= INT64_MIN && v <= INT64_MAX) return PyLong_FromLongLong((long long)v);
    if (v > 0 && v <= (__int128)UINT64_MAX) return PyLong_FromUnsignedLongLong((unsigned long long)v);
    /* beyond 64 bits (an address near 2**64): (v >> 64) * 2**64 + its low 64 bits */
    PyObject *hi = PyLong_FromLongLong((long long)(v >> 64)), *lo = PyLong_FromUnsignedLongLong((uint64_t)v);
    PyObject *sixty_four = PyLong_FromLong(64);
    PyObject *shifted = (hi && sixty_four) ? PyNumber_Lshift(hi, sixty_four) : NULL;
    PyObject *r = (shifted && lo) ? PyNumber_Add(shifted, lo) : NULL;
    Py_XDECREF(hi);
    Py_XDECREF(lo);
    Py_XDECREF(sixty_four);
    Py_XDECREF(shifted);
    return r;
}

/* The address a slow lea loads (address + size +/- int(disp, 16)), NULL with ValueError when int() refuses. */
static PyObject *slow_lea(const event *v, const char *op) {
    const char *disp;
    size_t n;
    int plus;
    lea_operand(op, &disp, &n, &plus);
    PyObject *off = int_slow(disp, n);
    if (off == NULL) return NULL;
    PyObject *addr = PyLong_FromUnsignedLongLong(v->address), *size = PyLong_FromLong(v->size);
    PyObject *next = (addr && size) ? PyNumber_Add(addr, size) : NULL;
    PyObject *r = next ? (plus ? PyNumber_Add(next, off) : PyNumber_Subtract(next, off)) : NULL;
    Py_XDECREF(addr);
    Py_XDECREF(size);
    Py_XDECREF(next);
    Py_DECREF(off);
    return r;
}

/* Whether a slow jmp's target leaves [entry, entry + size): 1, 0, or -1 with an error set. */
static int slow_outside(PyObject *target, uint64_t entry, uint64_t size) {
    PyObject *lo = PyLong_FromUnsignedLongLong(entry), *hi = long_from_i128((__int128)entry + size);
    int r = -1;
    if (lo && hi) {
        int ge = PyObject_RichCompareBool(target, lo, Py_GE);
        int lt = ge > 0 ? PyObject_RichCompareBool(target, hi, Py_LT) : 0;
        r = (ge < 0 || lt < 0) ? -1 : !(ge && lt);
    }
    Py_XDECREF(lo);
    Py_XDECREF(hi);
    return r;
}

/* capstone.CsError(err), as the binding raises it (looked up when needed: no Python state kept here). */
static void raise_cs_error(cs_err err) {
    PyObject *mod = PyImport_ImportModule("capstone");
    PyObject *cls = mod ? PyObject_GetAttrString(mod, "CsError") : NULL;
    PyObject *exc = cls ? PyObject_CallFunction(cls, "i", (int)err) : NULL;
    if (exc != NULL) PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_XDECREF(exc);
    Py_XDECREF(cls);
    Py_XDECREF(mod);
}

/* Append (address, value mod 2**64) to a packed pair buffer: 16 bytes, little-endian. */
static void put_pair(uint8_t *out, Py_ssize_t *filled, uint64_t address, uint64_t value) {
    address = htole64(address);
    value = htole64(value);
    memcpy(out + 16 * *filled, &address, 8);
    memcpy(out + 16 * *filled + 8, &value, 8);
    (*filled)++;
}

/* A Python int (a slow event's target) modulo 2**64, stealing the reference; -1 with an error set on NULL. */
static int masked(PyObject *v, uint64_t *out) {
    if (v == NULL) return -1;
    *out = PyLong_AsUnsignedLongLongMask(v);
    Py_DECREF(v);
    return PyErr_Occurred() ? -1 : 0;
}

/* The fields of one function (events [a, b)): factory(...) or a 5-tuple; NULL on error. calls, tail jumps and
   address loads are packed pairs (callgraph.FunctionScan: 16 bytes each, the target modulo 2**64 as the CPU
   computes it), syscalls a tuple of ints. */
static PyObject *build(const events *e, size_t a, size_t b, const function_result *r, uint64_t entry,
                       uint64_t size, PyObject *factory) {
    if (r->error != CS_ERR_OK) {
        raise_cs_error(r->error);
        return NULL;
    }
    Py_ssize_t counts[3] = {0, 0, 0}, sys = 0; /* calls, jumps, refs (upper bounds for slow ones) */
    for (size_t k = a; k < b; k++) {
        switch (e->ev[k].kind) {
        case EV_CALL: case EV_SLOW_CALL: counts[0]++; break;
        case EV_JMP: case EV_SLOW_JMP: counts[1]++; break;
        case EV_LEA: case EV_SLOW_LEA: counts[2]++; break;
        default: sys++;
        }
    }
    uint8_t *packed[3] = {NULL, NULL, NULL};
    PyObject *fields[3] = {NULL, NULL, NULL};
    PyObject *syscalls = PyTuple_New(sys), *indirect = PyLong_FromLong(r->indirect), *result = NULL;
    Py_ssize_t filled[3] = {0, 0, 0}, nsys = 0;
    for (int j = 0; j < 3; j++) {
        packed[j] = PyMem_Malloc(16 * (size_t)(counts[j] ? counts[j] : 1));
        if (packed[j] == NULL) {
            PyErr_NoMemory();
            goto out;
        }
    }
    if (!syscalls || !indirect) goto out;
    for (size_t k = a; k < b; k++) {
        const event *v = &e->ev[k];
        uint64_t target;
        switch (v->kind) {
        case EV_CALL:
            put_pair(packed[0], &filled[0], v->address, v->value);
            break;
        case EV_JMP:
            put_pair(packed[1], &filled[1], v->address, v->value);
            break;
        case EV_LEA:
            put_pair(packed[2], &filled[2], v->address, v->address + v->size + v->value); /* mod 2**64 */
            break;
        case EV_SYSCALL: {
            PyObject *addr = PyLong_FromUnsignedLongLong(v->address);
            if (addr == NULL) goto out;
            PyTuple_SET_ITEM(syscalls, nsys++, addr);
            break;
        }
        case EV_SLOW_CALL: /* int(op_str, 16): its ValueError propagates, as in the Python scanner */
            if (masked(int_slow(e->text + v->text, strlen(e->text + v->text)), &target) < 0) goto out;
            put_pair(packed[0], &filled[0], v->address, target);
            break;
        case EV_SLOW_JMP: {
            PyObject *t = int_slow(e->text + v->text, strlen(e->text + v->text));
            if (t == NULL) goto out;
            int outside = slow_outside(t, entry, size);
            if (outside <= 0) {
                Py_DECREF(t);
                if (outside < 0) goto out;
                break;
            }
            if (masked(t, &target) < 0) goto out;
            put_pair(packed[1], &filled[1], v->address, target);
            break;
        }
        case EV_SLOW_LEA: {
            PyObject *t = slow_lea(v, e->text + v->text);
            if (t == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_ValueError)) goto out;
                PyErr_Clear(); /* contextlib.suppress(ValueError): no reference */
                break;
            }
            if (masked(t, &target) < 0) goto out;
            put_pair(packed[2], &filled[2], v->address, target);
            break;
        }
        }
    }
    for (int j = 0; j < 3; j++) {
        fields[j] = PyBytes_FromStringAndSize((const char *)packed[j], 16 * filled[j]);
        if (fields[j] == NULL) goto out;
    }
    if (factory != NULL) {
        PyObject *args[5] = {fields[0], fields[1], indirect, syscalls, fields[2]};
        result = PyObject_Vectorcall(factory, args, 5, NULL);
    } else {
        result = PyTuple_Pack(5, fields[0], fields[1], indirect, syscalls, fields[2]);
    }
out: /* after an error, slots not filled yet are NULL: a tuple's dealloc skips them */
    for (int j = 0; j < 3; j++) {
        PyMem_Free(packed[j]);
        Py_XDECREF(fields[j]);
    }
    Py_XDECREF(syscalls);
    Py_XDECREF(indirect);
    return result;
}

/* -- Python entry point ----------------------------------------------------------------------------------------- */

static int as_u64(PyObject *o, uint64_t *out, const char *what) {
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "%s must be an int in [0, 2**64)", what);
        }
        return -1;
    }
    *out = v;
    return 0;
}

/* end - entry, in Python ints (a function may end at 2**64 or past it, scan_code at the top of the address
   space); ValueError when it ends before it starts. */
static int function_size(PyObject *end, uint64_t entry, uint64_t *size) {
    if (!PyLong_Check(end)) {
        PyErr_SetString(PyExc_TypeError, "ends must be ints");
        return -1;
    }
    PyObject *entry_o = PyLong_FromUnsignedLongLong(entry);
    PyObject *diff = entry_o ? PyNumber_Subtract(end, entry_o) : NULL;
    Py_XDECREF(entry_o);
    if (diff == NULL) return -1;
    int r = as_u64(diff, size, "end - entry");
    Py_DECREF(diff);
    return r;
}

/* Take the handle's lock; waiting for it without the GIL, so its holder can finish. */
static void lock_handle(void) {
    if (!PyThread_acquire_lock(cs.lock, NOWAIT_LOCK)) {
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(cs.lock, WAIT_LOCK);
        Py_END_ALLOW_THREADS
    }
}

PyDoc_STRVAR(scan_many_doc,
"scan_many(buffer, base, entries, ends, factory=None) -> list\n\n"
"Scan the functions [entries[i], ends[i]) of buffer (bytes-like), whose first byte is at vaddr base: for\n"
"each, factory(calls, tail_jumps, indirect_calls, syscalls, address_refs) (that tuple without a factory),\n"
"the fields of callgraph.scan_code's FunctionScan.  ValueError when a range is not inside the buffer or\n"
"ends before it starts; capstone.CsError as the Python binding raises it.  Disassembles without the GIL.");

static PyObject *scan_many(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"buffer", "base", "entries", "ends", "factory", NULL};
    Py_buffer buf;
    PyObject *base_o, *entries_o, *ends_o, *factory = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*OOO|O:scan_many", kwlist, &buf, &base_o, &entries_o,
                                     &ends_o, &factory))
        return NULL;
    if (factory == Py_None) factory = NULL;
    PyObject *result = NULL, *entries = NULL, *ends = NULL;
    uint64_t *bounds = NULL; /* entry, size of each function */
    function_result *fr = NULL;
    events e = {0};
    uint64_t base;
    if (factory != NULL && !PyCallable_Check(factory)) {
        PyErr_SetString(PyExc_TypeError, "factory must be callable");
        goto out;
    }
    if (as_u64(base_o, &base, "base") < 0) goto out;
    entries = PySequence_Fast(entries_o, "entries must be a sequence");
    ends = entries ? PySequence_Fast(ends_o, "ends must be a sequence") : NULL;
    if (ends == NULL) goto out;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(entries);
    if (PySequence_Fast_GET_SIZE(ends) != n) {
        PyErr_SetString(PyExc_ValueError, "entries and ends differ in length");
        goto out;
    }
    bounds = PyMem_Malloc(2 * (size_t)(n ? n : 1) * sizeof(uint64_t));
    fr = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(function_result));
    if (bounds == NULL || fr == NULL) {
        PyErr_NoMemory();
        goto out;
    }
    unsigned __int128 limit = (unsigned __int128)base + (size_t)buf.len;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t entry, size;
        if (as_u64(PySequence_Fast_GET_ITEM(entries, i), &entry, "entry") < 0 ||
            function_size(PySequence_Fast_GET_ITEM(ends, i), entry, &size) < 0)
            goto out;
        if (entry < base || (unsigned __int128)entry + size > limit) {
            PyErr_Format(PyExc_ValueError, "function at %#llx, %llu bytes, is not inside the buffer [%#llx, +%#zx)",
                         (unsigned long long)entry, (unsigned long long)size, (unsigned long long)base,
                         (size_t)buf.len);
            goto out;
        }
        bounds[2 * i] = entry;
        bounds[2 * i + 1] = size;
    }
    result = PyList_New(n);
    if (result == NULL) goto out;
    const uint8_t *data = buf.buf;
    for (Py_ssize_t i = 0; i < n;) {
        Py_ssize_t j = i;
        size_t bytes = 0;
        while (j < n && (j == i || bytes < CHUNK_BYTES)) {
            bytes += bounds[2 * j + 1];
            j++;
        }
        e.n = 0;
        e.text_n = 0;
        lock_handle();
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t k = i; k < j && !e.oom; k++)
            scan_function(&e, data + (bounds[2 * k] - base), bounds[2 * k + 1], bounds[2 * k], &fr[k]);
        PyThread_release_lock(cs.lock);
        Py_END_ALLOW_THREADS
        if (e.oom) {
            PyErr_NoMemory();
            Py_CLEAR(result);
            goto out;
        }
        for (Py_ssize_t k = i; k < j; k++) {
            size_t last = k + 1 < j ? fr[k + 1].first_event : e.n;
            PyObject *one = build(&e, fr[k].first_event, last, &fr[k], bounds[2 * k], bounds[2 * k + 1], factory);
            if (one == NULL) {
                Py_CLEAR(result);
                goto out;
            }
            PyList_SET_ITEM(result, k, one);
        }
        i = j;
    }
out:
    free(e.ev);
    free(e.text);
    PyMem_Free(bounds);
    PyMem_Free(fr);
    Py_XDECREF(entries);
    Py_XDECREF(ends);
    PyBuffer_Release(&buf);
    return result;
}

/* -- rel32_sites: the byte prefilter of gohook.sites.hooks.direct_call_sites --------------------------------- */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

PyDoc_STRVAR(rel32_sites_doc,
"rel32_sites(buffer, base, entries, ends, targets) -> list of (address, target)\n\n"
"Every byte E8 (call rel32) or E9 (jmp rel32) at offset p of a function [entries[i], ends[i]) of `buffer`\n"
"(first byte at virtual address `base`) with p + 5 <= the function's end, whose rel32 lands on one of\n"
"`targets`: candidates only (a byte inside another instruction matches too); the caller confirms them by\n"
"disassembly. What hooks.direct_call_sites' Python byte scan finds, without a Python step per E8/E9 byte.");

static PyObject *rel32_sites(PyObject *self, PyObject *args) {
    Py_buffer buf;
    unsigned long long base;
    PyObject *entries_o, *ends_o, *targets_o, *out = NULL;
    uint64_t *targets = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*KOOO:rel32_sites", &buf, &base, &entries_o, &ends_o, &targets_o))
        return NULL;
    PyObject *entries = PySequence_Fast(entries_o, "entries must be a sequence");
    PyObject *ends = entries ? PySequence_Fast(ends_o, "ends must be a sequence") : NULL;
    PyObject *tseq = ends ? PySequence_Fast(targets_o, "targets must be a sequence") : NULL;
    if (tseq == NULL)
        goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(entries), nt = PySequence_Fast_GET_SIZE(tseq);
    if (PySequence_Fast_GET_SIZE(ends) != n) {
        PyErr_SetString(PyExc_ValueError, "entries and ends differ in length");
        goto done;
    }
    targets = PyMem_Malloc(sizeof(uint64_t) * (size_t)(nt ? nt : 1));
    if (targets == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < nt; k++) {
        targets[k] = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(tseq, k));
        if (PyErr_Occurred())
            goto done;
    }
    qsort(targets, (size_t)nt, sizeof(uint64_t), cmp_u64);
    out = PyList_New(0);
    if (out == NULL)
        goto done;
    const uint8_t *d = buf.buf;
    uint64_t lo = base, hi = base + (uint64_t)buf.len;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t entry = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(entries, i));
        uint64_t end = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(ends, i));
        if (PyErr_Occurred())
            goto fail;
        if (entry < lo || end > hi || end < entry) {
            PyErr_Format(PyExc_ValueError, "function [%#llx, %#llx) is outside the buffer",
                         (unsigned long long)entry, (unsigned long long)end);
            goto fail;
        }
        for (uint64_t a = entry; a + 5 <= end; a++) {
            uint8_t op = d[a - lo];
            if (op != 0xE8 && op != 0xE9)
                continue;
            int32_t rel;
            memcpy(&rel, d + (a - lo) + 1, 4);
            uint64_t t = a + 5 + (uint64_t)(int64_t)rel;
            if (bsearch(&t, targets, (size_t)nt, sizeof(uint64_t), cmp_u64) == NULL)
                continue;
            PyObject *pair = Py_BuildValue("(KK)", (unsigned long long)a, (unsigned long long)t);
            if (pair == NULL || PyList_Append(out, pair) < 0) {
                Py_XDECREF(pair);
                goto fail;
            }
            Py_DECREF(pair);
        }
    }
    goto done;
fail:
    Py_CLEAR(out);
done:
    PyMem_Free(targets);
    Py_XDECREF(entries);
    Py_XDECREF(ends);
    Py_XDECREF(tseq);
    PyBuffer_Release(&buf);
    return out;
}

/* -- words_present: the data search of gohook.sites.hooks.address_taken ---------------------------------------- */

PyDoc_STRVAR(words_present_doc,
"words_present(buffer, words) -> list of the words (ints) stored in buffer as 8 little-endian bytes\n\n"
"At any byte offset, as bytes.find(struct.pack('<Q', w)) >= 0 says for each word (the Python fallback):\n"
"one pass over the buffer for all of them, the GIL released, instead of one pass per word.");

static PyObject *words_present(PyObject *self, PyObject *args) {
    Py_buffer buf;
    PyObject *words_o, *out = NULL;
    uint64_t *words = NULL;
    unsigned char *found = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*O:words_present", &buf, &words_o))
        return NULL;
    PyObject *wseq = PySequence_Fast(words_o, "words must be a sequence");
    if (wseq == NULL)
        goto done;
    Py_ssize_t nw = PySequence_Fast_GET_SIZE(wseq);
    words = PyMem_Malloc(sizeof(uint64_t) * (size_t)(nw ? nw : 1));
    found = PyMem_Calloc((size_t)(nw ? nw : 1), 1);
    if (words == NULL || found == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < nw; k++) {
        words[k] = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(wseq, k));
        if (PyErr_Occurred())
            goto done;
    }
    qsort(words, (size_t)nw, sizeof(uint64_t), cmp_u64);
    Py_ssize_t unique = 0; /* each word once: bsearch then finds its only copy */
    for (Py_ssize_t k = 0; k < nw; k++)
        if (unique == 0 || words[k] != words[unique - 1])
            words[unique++] = words[k];
    nw = unique;
    if (nw > 0 && buf.len >= 8) {
        const uint8_t *d = buf.buf;
        size_t last = (size_t)buf.len - 8;
        uint64_t lo = words[0], hi = words[nw - 1];
        Py_BEGIN_ALLOW_THREADS
        for (size_t p = 0; p <= last; p++) {
            uint64_t v;
            memcpy(&v, d + p, 8);
            v = le64toh(v);
            if (v < lo || v > hi)
                continue;
            uint64_t *at = bsearch(&v, words, (size_t)nw, sizeof(uint64_t), cmp_u64);
            if (at != NULL)
                found[at - words] = 1;
        }
        Py_END_ALLOW_THREADS
    }
    out = PyList_New(0);
    if (out == NULL)
        goto done;
    for (Py_ssize_t k = 0; k < nw; k++) {
        if (!found[k])
            continue;
        PyObject *w = PyLong_FromUnsignedLongLong(words[k]);
        if (w == NULL || PyList_Append(out, w) < 0) {
            Py_XDECREF(w);
            Py_CLEAR(out);
            goto done;
        }
        Py_DECREF(w);
    }
done:
    PyMem_Free(words);
    PyMem_Free(found);
    Py_XDECREF(wseq);
    PyBuffer_Release(&buf);
    return out;
}

/* -- frame_pointer_saves: analysis._saves_frame_pointer_python for many functions------------------------------- */

#define FP_WINDOW 64 /* bytes of a function's start looked at, as analysis.py reads them */

PyDoc_STRVAR(frame_pointer_saves_doc,
"frame_pointer_saves(buffer, base, entries, ends) -> bytes\n\n"
"For each function [entries[i], ends[i]) of buffer (first byte at vaddr base), 1 when its first\n"
"min(64, length) bytes, disassembled without skipping data, reach `push rbp` or `mov qword ptr [rsp...], rbp`\n"
"before a `call`, a `ret` or bytes that are no instruction; else 0: analysis._saves_frame_pointer_python's rules\n"
"on the same capstone text, without a Python step per instruction (1.2 s on Debian's prometheus).");

static PyObject *frame_pointer_saves(PyObject *self, PyObject *args) {
    Py_buffer buf;
    unsigned long long base;
    PyObject *entries_o, *ends_o, *out = NULL;
    uint64_t *bounds = NULL; /* entry, end of function i at 2i, 2i + 1 */
    (void)self;
    if (!PyArg_ParseTuple(args, "y*KOO:frame_pointer_saves", &buf, &base, &entries_o, &ends_o))
        return NULL;
    PyObject *entries = PySequence_Fast(entries_o, "entries must be a sequence");
    PyObject *ends = entries ? PySequence_Fast(ends_o, "ends must be a sequence") : NULL;
    if (ends == NULL)
        goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(entries);
    if (PySequence_Fast_GET_SIZE(ends) != n) {
        PyErr_SetString(PyExc_ValueError, "entries and ends differ in length");
        goto done;
    }
    const uint8_t *d = buf.buf;
    uint64_t lo = base, hi = base + (uint64_t)buf.len;
    bounds = PyMem_Malloc(sizeof(uint64_t) * 2 * (size_t)(n ? n : 1));
    if (bounds == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) { /* every range read and checked first: the walk below needs no GIL */
        uint64_t entry = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(entries, i));
        uint64_t end = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(ends, i));
        if (PyErr_Occurred())
            goto done;
        if (entry < lo || end > hi || end < entry) {
            PyErr_Format(PyExc_ValueError, "function [%#llx, %#llx) is outside the buffer",
                         (unsigned long long)entry, (unsigned long long)end);
            goto done;
        }
        bounds[2 * i] = entry;
        bounds[2 * i + 1] = end;
    }
    out = PyBytes_FromStringAndSize(NULL, n);
    if (out == NULL)
        goto done;
    char *flags = PyBytes_AS_STRING(out);
    lock_handle();
    Py_BEGIN_ALLOW_THREADS /* (issue 17 §6: the analysis runs this in a thread beside its Python loop) */
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t entry = bounds[2 * i], end = bounds[2 * i + 1];
        const uint8_t *code = d + (entry - lo);
        size_t size = end - entry < FP_WINDOW ? (size_t)(end - entry) : FP_WINDOW;
        uint64_t address = entry;
        char saves = 0;
        while (cs.disasm_iter(cs.strict, &code, &size, &address, cs.insn)) {
            const char *m = cs.insn->mnemonic, *op = cs.insn->op_str;
            if (strcmp(m, "push") == 0 && strcmp(op, "rbp") == 0) {
                saves = 1;
                break;
            }
            if (strcmp(m, "mov") == 0 && strncmp(op, "qword ptr [rsp", 14) == 0) {
                size_t len = strlen(op);
                if (len >= 5 && strcmp(op + len - 5, ", rbp") == 0) {
                    saves = 1;
                    break;
                }
            }
            if (strcmp(m, "call") == 0 || strcmp(m, "ret") == 0)
                break;
        }
        flags[i] = saves;
    }
    Py_END_ALLOW_THREADS
    PyThread_release_lock(cs.lock);
done:
    PyMem_Free(bounds);
    Py_XDECREF(entries);
    Py_XDECREF(ends);
    PyBuffer_Release(&buf);
    return out;
}

static PyMethodDef methods[] = {
    {"scan_many", (PyCFunction)(void (*)(void))scan_many, METH_VARARGS | METH_KEYWORDS, scan_many_doc},
    {"rel32_sites", rel32_sites, METH_VARARGS, rel32_sites_doc},
    {"frame_pointer_saves", frame_pointer_saves, METH_VARARGS, frame_pointer_saves_doc},
    {"words_present", words_present, METH_VARARGS, words_present_doc},
    {NULL, NULL, 0, NULL},
};

/* -- loading libcapstone ---------------------------------------------------------------------------------------- */

/* The file name of the library the capstone package loaded (capstone._cs._name): a new reference. */
static PyObject *loaded_library_path(void) {
    PyObject *mod = PyImport_ImportModule("capstone");
    if (mod == NULL) return NULL;
    PyObject *lib = PyObject_GetAttrString(mod, "_cs");
    Py_DECREF(mod);
    if (lib == NULL) return NULL;
    PyObject *name = PyObject_GetAttrString(lib, "_name");
    Py_DECREF(lib);
    if (name != NULL && !PyUnicode_Check(name)) {
        Py_DECREF(name);
        PyErr_SetString(PyExc_ImportError, "capstone._cs._name is not a path");
        return NULL;
    }
    return name;
}

static void *symbol(void *lib, const char *name) {
    void *p = dlsym(lib, name);
    if (p == NULL) PyErr_Format(PyExc_ImportError, "libcapstone has no %s", name);
    return p;
}

/* A forked child has only the forking thread: a lock another thread held at fork() would stay held for
   ever, so the child starts with a new one (the handle is safe to reuse: cs_disasm_iter keeps no state
   between calls, and the holder, gone, was in the middle of one). */
static void new_lock_in_child(void) {
    cs.lock = PyThread_allocate_lock();
}

static int open_capstone(void) {
    PyObject *path = loaded_library_path();
    if (path == NULL) return -1;
    PyObject *fs = PyUnicode_EncodeFSDefault(path);
    Py_DECREF(path);
    if (fs == NULL) return -1;
    /* the library stays loaded for the life of the process (the capstone package holds it too), and so do
       the handle and buffer made below: no cs_close, the process ends */
    void *lib = dlopen(PyBytes_AS_STRING(fs), RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        PyErr_Format(PyExc_ImportError, "dlopen %s: %s", PyBytes_AS_STRING(fs), dlerror());
        Py_DECREF(fs);
        return -1;
    }
    Py_DECREF(fs);
    cs_version_fn version = (cs_version_fn)symbol(lib, "cs_version");
    cs_open_fn open = (cs_open_fn)symbol(lib, "cs_open");
    cs_option_fn option = (cs_option_fn)symbol(lib, "cs_option");
    cs_malloc_fn malloc_insn = (cs_malloc_fn)symbol(lib, "cs_malloc");
    cs.disasm_iter = (cs_disasm_iter_fn)symbol(lib, "cs_disasm_iter");
    cs.errnum = (cs_errno_fn)symbol(lib, "cs_errno");
    if (!version || !open || !option || !malloc_insn || !cs.disasm_iter || !cs.errnum) return -1;
    int major = 0, minor = 0;
    version(&major, &minor);
    if (major != CS_API_MAJOR || minor != CS_API_MINOR) { /* struct cs_insn may differ: do not guess */
        PyErr_Format(PyExc_ImportError, "built against capstone %d.%d, the loaded libcapstone is %d.%d",
                     CS_API_MAJOR, CS_API_MINOR, major, minor);
        return -1;
    }
    cs_err err = open(CS_ARCH_X86, CS_MODE_64, &cs.handle);
    if (err == CS_ERR_OK) err = option(cs.handle, CS_OPT_SKIPDATA, CS_OPT_ON);
    if (err == CS_ERR_OK) err = option(cs.handle, CS_OPT_DETAIL, CS_OPT_OFF);
    if (err == CS_ERR_OK) err = open(CS_ARCH_X86, CS_MODE_64, &cs.strict);
    if (err == CS_ERR_OK) err = option(cs.strict, CS_OPT_DETAIL, CS_OPT_OFF);
    if (err != CS_ERR_OK) {
        PyErr_Format(PyExc_ImportError, "capstone: cs_open/cs_option failed (error %d)", (int)err);
        return -1;
    }
    cs.insn = malloc_insn(cs.handle);
    cs.lock = PyThread_allocate_lock();
    if (cs.insn == NULL || cs.lock == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (pthread_atfork(NULL, NULL, new_lock_in_child) != 0) {
        PyErr_SetString(PyExc_ImportError, "pthread_atfork failed");
        return -1;
    }
    return 0;
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "gohook.gosym._scan",
    .m_doc = "The machine-code scanner of gohook.static.callgraph in C over libcapstone (see _scan.c).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__scan(void) {
    if (cs.lock == NULL && open_capstone() < 0) return NULL;
    return PyModule_Create(&module);
}
