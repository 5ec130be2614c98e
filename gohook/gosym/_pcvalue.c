/*
 * Optional accelerator for gohook/gosym/pclntab.py: decode one PC-value table.
 *
 *   decode(data, start, entry, quantum) -> (pcs, values)
 *   value_at(data, start, entry, quantum, pc) -> value
 *
 * The table format (see the module header of pclntab.py): from val = -1,
 * pc = entry, repeat { uvarint uv (0 ends the table, except on the first
 * pair); val += zigzag(uv); uvarint pd; pc += pd * quantum; emit (pc, val) }.
 * pcs holds the end pc of each run, values its value plus one trailing -1
 * (the value past the table's end), both as tuples of ints: exactly what
 * LineTable._decode_python returns, which stays the reference and the
 * fallback when this module is not built.
 *
 * Errors: IndexError when the table runs past the end of data, ValueError
 * for a varint longer than 5 bytes (the runtime reads uint32 varints); the
 * Python side turns both into PclntabError.
 *
 * Two passes: the first finds the entry count (so the tuples are allocated
 * once, at their final size), the second fills them.
 *
 * value_at walks the table only as far as pc and builds nothing: the value
 * decode()'s tables give at pc (values[bisect_right(pcs, pc)], -1 past the
 * end). For one-off lookups (the file of every function's entry, issue 17
 * §6): decoding and caching the whole tables of 60,000 functions to read one
 * value of each cost 105 MB and 0.7 s on Debian's prometheus.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* Read one uvarint at *p; 0 on success, -1 past the end, -2 too long. */
static int read_uvarint(const uint8_t *d, Py_ssize_t n, Py_ssize_t *p, uint64_t *out)
{
    uint64_t v = 0;
    int shift = 0;
    for (;;) {
        if (*p >= n)
            return -1;
        uint8_t b = d[(*p)++];
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80))
            break;
        shift += 7;
        if (shift > 28)
            return -2;
    }
    *out = v;
    return 0;
}

/* Walk the table once; count entries, or fill the tuples when given. */
static int walk(const uint8_t *d, Py_ssize_t n, Py_ssize_t p, int64_t pc, int64_t quantum,
                Py_ssize_t *count, PyObject *pcs, PyObject *vals, Py_ssize_t *where)
{
    int64_t val = -1;
    Py_ssize_t k = 0;
    for (;;) {
        uint64_t uv, pd;
        if (k > 0 && p < n && d[p] == 0)
            break; /* a zero byte where a value delta starts ends the table (as the runtime, never on the first pair) */
        int rc = read_uvarint(d, n, &p, &uv);
        if (rc == 0)
            rc = read_uvarint(d, n, &p, &pd);
        if (rc != 0) {
            *where = p;
            return rc;
        }
        val += (int64_t)(uv >> 1) ^ -(int64_t)(uv & 1);
        pc += (int64_t)pd * quantum;
        if (pcs != NULL) {
            PyObject *a = PyLong_FromLongLong(pc), *b = PyLong_FromLongLong(val);
            if (a == NULL || b == NULL) {
                Py_XDECREF(a);
                Py_XDECREF(b);
                return -3;
            }
            PyTuple_SET_ITEM(pcs, k, a);
            PyTuple_SET_ITEM(vals, k, b);
        }
        k++;
    }
    *count = k;
    return 0;
}

static PyObject *decode(PyObject *self, PyObject *args)
{
    Py_buffer buf;
    Py_ssize_t start, count, where = 0;
    long long entry, quantum;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nLL:decode", &buf, &start, &entry, &quantum))
        return NULL;
    const uint8_t *d = buf.buf;
    Py_ssize_t n = buf.len;
    PyObject *pcs = NULL, *vals = NULL, *result = NULL;
    int rc = start < 0 ? -1 : walk(d, n, start, entry, quantum, &count, NULL, NULL, &where);
    if (rc == 0) {
        pcs = PyTuple_New(count);
        vals = PyTuple_New(count + 1);
        if (pcs == NULL || vals == NULL)
            goto done;
        rc = walk(d, n, start, entry, quantum, &count, pcs, vals, &where);
    }
    if (rc == -1) {
        PyErr_Format(PyExc_IndexError, "PC table runs past the data at %zd", where);
    } else if (rc == -2) {
        PyErr_Format(PyExc_ValueError, "varint longer than 5 bytes at %zd", where);
    } else if (rc == 0) {
        PyObject *last = PyLong_FromLong(-1);
        if (last != NULL) {
            PyTuple_SET_ITEM(vals, count, last);
            result = PyTuple_Pack(2, pcs, vals);
        }
    }
done:
    Py_XDECREF(pcs);
    Py_XDECREF(vals);
    PyBuffer_Release(&buf);
    return result;
}

static PyObject *value_at(PyObject *self, PyObject *args)
{
    Py_buffer buf;
    Py_ssize_t start;
    long long entry, quantum, target;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nLLL:value_at", &buf, &start, &entry, &quantum, &target))
        return NULL;
    const uint8_t *d = buf.buf;
    Py_ssize_t n = buf.len, p = start, k = 0;
    int64_t val = -1, pc = entry;
    int rc = p < 0 ? -1 : 0;
    while (rc == 0) {
        uint64_t uv, pd;
        if (k > 0 && p < n && d[p] == 0) {
            val = -1; /* past the table's end */
            break;
        }
        rc = read_uvarint(d, n, &p, &uv);
        if (rc == 0)
            rc = read_uvarint(d, n, &p, &pd);
        if (rc != 0)
            break;
        val += (int64_t)(uv >> 1) ^ -(int64_t)(uv & 1);
        pc += (int64_t)pd * quantum;
        k++;
        if (pc > target)
            break; /* this run [previous pc, pc) holds target */
    }
    PyBuffer_Release(&buf);
    if (rc == -1)
        return PyErr_Format(PyExc_IndexError, "PC table runs past the data at %zd", p);
    if (rc == -2)
        return PyErr_Format(PyExc_ValueError, "varint longer than 5 bytes at %zd", p);
    return PyLong_FromLongLong(val);
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS, "decode(data, start, entry, quantum) -> (pcs, values)"},
    {"value_at", value_at, METH_VARARGS, "value_at(data, start, entry, quantum, pc) -> the table's value at pc"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pcvalue", "Decode Go PC-value tables (optional accelerator).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__pcvalue(void) { return PyModule_Create(&module); }
