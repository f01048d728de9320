/* The learned classifier's feature extraction in one C pass (see monitor/rules/classifier.py,
   whose Python code is the reference: tests/test_classifier.py checks both agree on every
   corpus item).

   extract(text, char_bits, word_bits) -> (indices, counts, n_char)

   ``text`` is already normalised (monitor.text.normalize). Features are hashed n-grams:

   * character n-grams, 2 to 5 characters, of each whitespace-separated token framed by one
     space on each side (" token "): the FNV-1a 64-bit hash of the byte 'c' followed by the
     n-gram's UTF-8 (lone surrogates encoded as three bytes, as 'surrogatepass'), folded
     ``h ^ (h >> 32)`` and masked to ``char_bits`` bits;
   * words (runs of characters for which str.isalnum() is true) and word bigrams: the hash
     of 'w' and the word's UTF-8, and of 'w', the first word, a space and the second, folded
     and masked to ``word_bits`` bits, plus 2**char_bits (the word block follows the
     character block).

   indices: the distinct feature indices in the order of their first occurrence (the
   character n-grams first), as native uint32 (bytes); counts: how often each occurs (uint32,
   bytes); n_char: how many of the indices are character ones. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
#define MAX_N 5

static inline uint64_t
fnv_byte(uint64_t h, unsigned char b)
{
    return (h ^ b) * FNV_PRIME;
}

static inline uint64_t
fnv_char(uint64_t h, Py_UCS4 c)
{
    if (c < 0x80)
        return fnv_byte(h, (unsigned char)c);
    if (c < 0x800) {
        h = fnv_byte(h, (unsigned char)(0xC0 | (c >> 6)));
        return fnv_byte(h, (unsigned char)(0x80 | (c & 0x3F)));
    }
    if (c < 0x10000) {
        h = fnv_byte(h, (unsigned char)(0xE0 | (c >> 12)));
        h = fnv_byte(h, (unsigned char)(0x80 | ((c >> 6) & 0x3F)));
        return fnv_byte(h, (unsigned char)(0x80 | (c & 0x3F)));
    }
    h = fnv_byte(h, (unsigned char)(0xF0 | (c >> 18)));
    h = fnv_byte(h, (unsigned char)(0x80 | ((c >> 12) & 0x3F)));
    h = fnv_byte(h, (unsigned char)(0x80 | ((c >> 6) & 0x3F)));
    return fnv_byte(h, (unsigned char)(0x80 | (c & 0x3F)));
}

static inline uint32_t
fold(uint64_t h, uint32_t mask)
{
    return (uint32_t)(h ^ (h >> 32)) & mask;
}

/* the emitted indices: a growing array, then counted in an open-addressing table */
typedef struct {
    uint32_t *v;
    Py_ssize_t n, cap;
} Buf;

static int
buf_push(Buf *b, uint32_t x)
{
    if (b->n == b->cap) {
        Py_ssize_t cap = b->cap ? b->cap * 2 : 1024;
        uint32_t *v = PyMem_Realloc(b->v, (size_t)cap * sizeof(uint32_t));
        if (v == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = x;
    return 0;
}

/* the distinct feature indices of a normalised text (see the top), in the order of their first
   occurrence, and their counts: into *keys_out and *vals_out (PyMem_Malloc'ed, the caller frees
   them); 0, or -1 with an exception set */
static int
collect(PyObject *text, long char_bits, long word_bits, uint32_t **keys_out, uint32_t **vals_out,
        Py_ssize_t *distinct_out, Py_ssize_t *distinct_char_out)
{
    const uint32_t cmask = (uint32_t)((1UL << char_bits) - 1), wmask = (uint32_t)((1UL << word_bits) - 1);
    const uint32_t wbase = (uint32_t)(1UL << char_bits);
    const int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    const Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    const uint64_t hc = fnv_byte(FNV_OFFSET, 'c'), hw = fnv_byte(FNV_OFFSET, 'w');

    Buf out = {NULL, 0, 0};
    Py_ssize_t n_char_emitted;
    uint32_t *keys = NULL, *vals = NULL, *table = NULL;
    int ok = -1;

    /* character n-grams of " token " */
    Py_ssize_t i = 0;
    while (i < len) {
        while (i < len && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i)))
            i++;
        if (i >= len)
            break;
        Py_ssize_t s = i;
        while (i < len && !Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i)))
            i++;
        Py_ssize_t e = i; /* token [s, e); framed: position -1 and e are spaces */
        Py_ssize_t plen = e - s + 2;
        for (Py_ssize_t a = 0; a + 1 < plen; a++) {
            uint64_t h = hc;
            Py_ssize_t stop = a + MAX_N < plen ? a + MAX_N : plen;
            for (Py_ssize_t j = a; j < stop; j++) {
                Py_UCS4 c = (j == 0 || j == plen - 1) ? ' ' : PyUnicode_READ(kind, data, s + j - 1);
                h = fnv_char(h, c);
                if (j > a && buf_push(&out, fold(h, cmask)) < 0)
                    goto done;
            }
        }
    }
    n_char_emitted = out.n;

    /* words and word bigrams */
    {
        uint64_t prev = 0;
        int have_prev = 0;
        i = 0;
        while (i < len) {
            while (i < len && !Py_UNICODE_ISALNUM(PyUnicode_READ(kind, data, i)))
                i++;
            if (i >= len)
                break;
            Py_ssize_t s = i;
            uint64_t h = hw;
            while (i < len && Py_UNICODE_ISALNUM(PyUnicode_READ(kind, data, i))) {
                h = fnv_char(h, PyUnicode_READ(kind, data, i));
                i++;
            }
            if (buf_push(&out, wbase + fold(h, wmask)) < 0)
                goto done;
            if (have_prev) {
                uint64_t b = fnv_byte(prev, ' ');
                for (Py_ssize_t j = s; j < i; j++)
                    b = fnv_char(b, PyUnicode_READ(kind, data, j));
                if (buf_push(&out, wbase + fold(b, wmask)) < 0)
                    goto done;
            }
            prev = h;
            have_prev = 1;
        }
    }

    /* count the distinct indices, in the order of their first occurrence (open addressing;
       a slot holds the key plus one, 0 is empty, and where the key is in keys[]) */
    {
        Py_ssize_t size = 64;
        while (size < 2 * out.n)
            size *= 2;
        table = PyMem_Calloc((size_t)size * 2, sizeof(uint32_t));
        Py_ssize_t m = out.n > 0 ? out.n : 1;
        keys = PyMem_Malloc((size_t)m * sizeof(uint32_t));
        vals = PyMem_Malloc((size_t)m * sizeof(uint32_t));
        if (table == NULL || keys == NULL || vals == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        const uint32_t tmask = (uint32_t)(size - 1);
        Py_ssize_t distinct = 0, distinct_char = 0;
        for (Py_ssize_t k = 0; k < out.n; k++) {
            uint32_t key = out.v[k] + 1;
            uint32_t at = (key * 2654435761U) & tmask;
            while (table[2 * at] != 0 && table[2 * at] != key)
                at = (at + 1) & tmask;
            if (table[2 * at] == 0) {
                table[2 * at] = key;
                table[2 * at + 1] = (uint32_t)distinct;
                keys[distinct] = key - 1;
                vals[distinct] = 1;
                distinct++;
                if (k < n_char_emitted)
                    distinct_char++;
            }
            else
                vals[table[2 * at + 1]]++;
        }
        *keys_out = keys;
        *vals_out = vals;
        keys = vals = NULL;
        *distinct_out = distinct;
        *distinct_char_out = distinct_char;
        ok = 0;
    }

done:
    PyMem_Free(out.v);
    PyMem_Free(table);
    PyMem_Free(keys);
    PyMem_Free(vals);
    return ok;
}

static int
parse_text_bits(PyObject *const *args, long *char_bits, long *word_bits)
{
    *char_bits = PyLong_AsLong(args[1]);
    *word_bits = PyLong_AsLong(args[2]);
    if ((*char_bits == -1 || *word_bits == -1) && PyErr_Occurred())
        return -1;
    if (*char_bits < 1 || *char_bits > 30 || *word_bits < 1 || *word_bits > 30) {
        PyErr_SetString(PyExc_ValueError, "char_bits and word_bits must be 1 to 30");
        return -1;
    }
    return 0;
}

static PyObject *
extract(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 3 || !PyUnicode_Check(args[0]) || !PyLong_Check(args[1]) || !PyLong_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "extract(text: str, char_bits: int, word_bits: int)");
        return NULL;
    }
    long char_bits, word_bits;
    if (parse_text_bits(args, &char_bits, &word_bits) < 0)
        return NULL;
    uint32_t *keys = NULL, *vals = NULL;
    Py_ssize_t distinct = 0, distinct_char = 0;
    if (collect(args[0], char_bits, word_bits, &keys, &vals, &distinct, &distinct_char) < 0)
        return NULL;
    PyObject *result = NULL;
    PyObject *ki = PyBytes_FromStringAndSize((const char *)keys, distinct * (Py_ssize_t)sizeof(uint32_t));
    PyObject *vi = PyBytes_FromStringAndSize((const char *)vals, distinct * (Py_ssize_t)sizeof(uint32_t));
    if (ki != NULL && vi != NULL)
        result = Py_BuildValue("(OOn)", ki, vi, distinct_char);
    Py_XDECREF(ki);
    Py_XDECREF(vi);
    PyMem_Free(keys);
    PyMem_Free(vals);
    return result;
}

/* score(text, char_bits, word_bits, rowmap, weights, classes) -> tuple of floats

   The logits of a normalised text without the intercept: what monitor.rules.classifier's
   Model.proba_features computes with NumPy (its reference), fused with the extraction.
   rowmap: int32 per feature index (2**char_bits + 2**word_bits of them), the row of the known
   index or -1; weights: float64 rows of classes + 1 values (idf * coef per class, idf ** 2).
   Per block (characters, words): sum tf * w over its known indices (tf = 1 + ln count),
   divided by the square root of sum tf ** 2 * idf ** 2 (nothing when that is 0). */
static PyObject *
score(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 6 || !PyUnicode_Check(args[0]) || !PyLong_Check(args[1]) || !PyLong_Check(args[2])
        || !PyLong_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError, "score(text: str, char_bits: int, word_bits: int, rowmap, weights, classes: int)");
        return NULL;
    }
    long char_bits, word_bits;
    if (parse_text_bits(args, &char_bits, &word_bits) < 0)
        return NULL;
    long k = PyLong_AsLong(args[5]);
    if (k < 1 || k > 64) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "classes must be 1 to 64");
        return NULL;
    }
    Py_buffer rm, w;
    if (PyObject_GetBuffer(args[3], &rm, PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[4], &w, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&rm);
        return NULL;
    }
    PyObject *result = NULL;
    uint32_t *keys = NULL, *vals = NULL;
    Py_ssize_t distinct = 0, distinct_char = 0;
    const Py_ssize_t n_index = ((Py_ssize_t)1 << char_bits) + ((Py_ssize_t)1 << word_bits);
    const Py_ssize_t stride = k + 1;
    if (rm.len != n_index * (Py_ssize_t)sizeof(int32_t) || w.len % (stride * (Py_ssize_t)sizeof(double)) != 0) {
        PyErr_SetString(PyExc_ValueError, "rowmap or weights do not have the sizes of char_bits, word_bits and classes");
        goto end;
    }
    const Py_ssize_t n_rows = w.len / (stride * (Py_ssize_t)sizeof(double));
    if (collect(args[0], char_bits, word_bits, &keys, &vals, &distinct, &distinct_char) < 0)
        goto end;
    {
        const int32_t *rows = rm.buf;
        const double *wt = w.buf;
        double logits[64] = {0}, part[64];
        for (int block = 0; block < 2; block++) {
            Py_ssize_t a = block == 0 ? 0 : distinct_char, b = block == 0 ? distinct_char : distinct;
            double norm2 = 0.0;
            for (long c = 0; c < k; c++)
                part[c] = 0.0;
            for (Py_ssize_t i = a; i < b; i++) {
                int32_t r = rows[keys[i]];
                if (r < 0 || r >= n_rows)
                    continue;
                const double tf = vals[i] == 1 ? 1.0 : 1.0 + log((double)vals[i]); /* most n-grams occur once */
                const double *row = wt + (Py_ssize_t)r * stride;
                for (long c = 0; c < k; c++)
                    part[c] += tf * row[c];
                norm2 += tf * tf * row[k];
            }
            if (norm2 > 0) {
                const double inv = 1.0 / sqrt(norm2);
                for (long c = 0; c < k; c++)
                    logits[c] += part[c] * inv;
            }
        }
        result = PyTuple_New(k);
        if (result != NULL) {
            for (long c = 0; c < k; c++) {
                PyObject *f = PyFloat_FromDouble(logits[c]);
                if (f == NULL) {
                    Py_CLEAR(result);
                    break;
                }
                PyTuple_SET_ITEM(result, c, f);
            }
        }
    }
end:
    PyMem_Free(keys);
    PyMem_Free(vals);
    PyBuffer_Release(&rm);
    PyBuffer_Release(&w);
    return result;
}

static PyMethodDef methods[] = {
    {"extract", (PyCFunction)(void (*)(void))extract, METH_FASTCALL,
     "extract(text, char_bits, word_bits) -> (indices, counts, n_char): the hashed n-gram features of a normalised text"},
    {"score", (PyCFunction)(void (*)(void))score, METH_FASTCALL,
     "score(text, char_bits, word_bits, rowmap, weights, classes) -> logits without the intercept"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_features", NULL, -1, methods};

PyMODINIT_FUNC
PyInit__features(void)
{
    return PyModule_Create(&module);
}
