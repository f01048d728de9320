/* The matcher's per-message scan in one C pass (see monitor/rules/scan.py).

   scan(text, table, lookup, pieces, hot, gated[, cache]) -> (st, tokens, values, nonempty, flags, gvals) | None

   * st: ``text`` with every character mapped through ``table`` (a bytearray of 0x20000
     native uint16: the image of each code point of the BMP and plane 1 under monitor.text's
     scan table, DELETED when it maps to nothing, UNKNOWN when not known here): exactly
     ``monitor.text.scan_text(text)``, which maps each character alone;
   * tokens: the non-empty runs of ``st`` between spaces (``st`` holds no other whitespace):
     ``st.split()``;
   * values: ``lookup[token]`` for each token (a dict: its ``__missing__`` is called for a
     token not in it, as ``lookup[token]`` would);
   * nonempty: the values that are not empty, in order;
   * flags: 1 when a token is in ``pieces``, 2 in ``hot``, 4 in ``gated`` (sets; asked right
     after the token's look-up, and only for tokens with a non-empty value: a token of one of
     these sets always has one, see monitor/rules/scan.py; a look-up may add to the sets, never
     take from them);
   * gvals: the values of the tokens in ``gated``, in order;
   * cache (optional, a WordCache or None): a token found in it takes its str, value and marks
     from there, without a str made or a dict look-up; a token not found is looked up as above
     and added.

   None when a character of ``text`` has no known one-character image (the caller then takes
   the Python path and may teach ``table`` the text's characters). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <time.h>

#define UNKNOWN 0xFFFF
#define DELETED 0xFFFE
#define TABLE_SIZE 0x20000 /* the BMP and plane 1 (emoji, mathematical letters) */

/* the n characters of buf into the new string s (of n characters, made for their largest) */
static void
copy_chars(PyObject *s, const Py_UCS4 *buf, Py_ssize_t n)
{
    int kind = PyUnicode_KIND(s);
    void *data = PyUnicode_DATA(s);
    if (kind == PyUnicode_1BYTE_KIND) {
        Py_UCS1 *d = data;
        for (Py_ssize_t i = 0; i < n; i++)
            d[i] = (Py_UCS1)buf[i];
    }
    else if (kind == PyUnicode_2BYTE_KIND) {
        Py_UCS2 *d = data;
        for (Py_ssize_t i = 0; i < n; i++)
            d[i] = (Py_UCS2)buf[i];
    }
    else
        memcpy(data, buf, n * sizeof(Py_UCS4));
}

/* WordCache: the scan's own word cache, keyed by a token's code points (no str made, hashed
   or looked up in the dict for a token seen before). An entry holds the token's str (the one
   made when it was first seen: the dict's key), its value and its marks (1 piece, 2 hot,
   4 gated, 8 a non-empty value) as they were right after its look-up. It is filled by scan()
   only, and must be cleared whenever the dict (or the sets) start over: a value, and a token's
   membership of the sets, must not change while the entry lives. At most max_entries
   entries (then no more are added: never cleared by the scan itself), tokens of at most
   max_chars characters; a look-up probes at most MAX_PROBES slots (a token not found by then
   takes the dict: colliding keys cost no more than without the cache). */

#define MAX_PROBES 16
#define NONEMPTY 8

typedef struct {
    uint64_t hash;
    PyObject *tok;   /* NULL: an empty slot */
    PyObject *value;
    uint32_t len;
    uint32_t flags;
} Entry;

typedef struct {
    PyObject_HEAD
    Entry *slots;
    size_t mask;     /* the number of slots - 1 (slots NULL: none yet) */
    Py_ssize_t used;
    Py_ssize_t max_entries;
    Py_ssize_t max_chars;
    uint64_t seed;
} WordCache;

static PyTypeObject WordCacheType;

static inline uint64_t
mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static int
same_chars(PyObject *tok, const Py_UCS4 *s, Py_ssize_t n)
{
    const void *data = PyUnicode_DATA(tok);
    switch (PyUnicode_KIND(tok)) {
    case PyUnicode_1BYTE_KIND: {
        const Py_UCS1 *d = data;
        for (Py_ssize_t i = 0; i < n; i++)
            if (d[i] != s[i])
                return 0;
        return 1;
    }
    case PyUnicode_2BYTE_KIND: {
        const Py_UCS2 *d = data;
        for (Py_ssize_t i = 0; i < n; i++)
            if (d[i] != s[i])
                return 0;
        return 1;
    }
    default:
        return memcmp(data, s, n * sizeof(Py_UCS4)) == 0;
    }
}

static Entry *
cache_find(WordCache *c, uint64_t h, const Py_UCS4 *s, Py_ssize_t n)
{
    if (c->slots == NULL)
        return NULL;
    size_t i = (size_t)h & c->mask;
    for (int probe = 0; probe < MAX_PROBES; probe++) {
        Entry *e = &c->slots[i];
        if (e->tok == NULL)
            return NULL;
        if (e->hash == h && e->len == (uint32_t)n && same_chars(e->tok, s, n))
            return e;
        i = (i + 1) & c->mask;
    }
    return NULL;
}

/* 0 when added or not added (full, or no free slot within MAX_PROBES), -1 on no memory */
static int
cache_add(WordCache *c, uint64_t h, PyObject *tok, PyObject *value, Py_ssize_t n, uint32_t flags)
{
    if (c->used >= c->max_entries)
        return 0;
    size_t size = c->slots == NULL ? 0 : c->mask + 1;
    if ((size_t)(c->used + 1) * 2 > size) {
        size_t new_size = size ? size * 2 : 1024;
        Entry *slots = PyMem_Calloc(new_size, sizeof(Entry));
        if (slots == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        size_t mask = new_size - 1;
        for (size_t j = 0; j < size; j++) {
            Entry *e = &c->slots[j];
            if (e->tok == NULL)
                continue;
            size_t i = (size_t)e->hash & mask;
            while (slots[i].tok != NULL)
                i = (i + 1) & mask;
            slots[i] = *e;
        }
        PyMem_Free(c->slots);
        c->slots = slots;
        c->mask = mask;
    }
    size_t i = (size_t)h & c->mask;
    for (int probe = 0; probe < MAX_PROBES; probe++) {
        Entry *e = &c->slots[i];
        if (e->tok == NULL) {
            Py_INCREF(tok);
            Py_INCREF(value);
            e->hash = h;
            e->tok = tok;
            e->value = value;
            e->len = (uint32_t)n;
            e->flags = flags;
            c->used++;
            return 0;
        }
        i = (i + 1) & c->mask;
    }
    return 0;
}

static void
cache_clear(WordCache *c)
{
    Entry *slots = c->slots; /* detached first: a DECREF below cannot reach a half-cleared table */
    size_t size = slots == NULL ? 0 : c->mask + 1;
    c->slots = NULL;
    c->mask = 0;
    c->used = 0;
    for (size_t j = 0; j < size; j++) {
        if (slots[j].tok != NULL) {
            Py_DECREF(slots[j].tok);
            Py_DECREF(slots[j].value);
        }
    }
    PyMem_Free(slots);
}

static PyObject *
WordCache_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_entries", "max_chars", NULL};
    Py_ssize_t max_entries, max_chars;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nn", kwlist, &max_entries, &max_chars))
        return NULL;
    if (max_entries < 0 || max_chars < 0 || max_chars > 0xFFFFFFF) {
        PyErr_SetString(PyExc_ValueError, "WordCache(max_entries >= 0, max_chars >= 0)");
        return NULL;
    }
    WordCache *c = (WordCache *)type->tp_alloc(type, 0);
    if (c == NULL)
        return NULL;
    c->slots = NULL;
    c->mask = 0;
    c->used = 0;
    c->max_entries = max_entries;
    c->max_chars = max_chars;
    c->seed = mix64((uint64_t)(uintptr_t)c ^ ((uint64_t)time(NULL) << 20) ^ 0x9e3779b97f4a7c15ULL);
    return (PyObject *)c;
}

static void
WordCache_dealloc(WordCache *c)
{
    cache_clear(c);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyObject *
WordCache_clear(WordCache *c, PyObject *Py_UNUSED(ignored))
{
    cache_clear(c);
    Py_RETURN_NONE;
}

static Py_ssize_t
WordCache_len(WordCache *c)
{
    return c->used;
}

static PyObject *
WordCache_get(WordCache *c, PyObject *tok)
{
    /* the entry of tok: (value, marks) or None (for the tests) */
    if (!PyUnicode_Check(tok)) {
        PyErr_SetString(PyExc_TypeError, "get(str)");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(tok);
    Py_UCS4 *s = PyUnicode_AsUCS4Copy(tok);
    if (s == NULL)
        return NULL;
    uint64_t h = c->seed;
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ULL;
    h = mix64(h ^ (uint64_t)n);
    Entry *e = cache_find(c, h, s, n);
    PyMem_Free(s);
    if (e == NULL)
        Py_RETURN_NONE;
    return Py_BuildValue("(OI)", e->value, e->flags);
}

static PyMethodDef WordCache_methods[] = {
    {"clear", (PyCFunction)WordCache_clear, METH_NOARGS, "forget every entry"},
    {"get", (PyCFunction)WordCache_get, METH_O, "get(token) -> (value, marks: 1 piece, 2 hot, 4 gated, 8 non-empty) or None"},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods WordCache_as_sequence = {
    .sq_length = (lenfunc)WordCache_len,
};

static PyTypeObject WordCacheType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "monitor.rules._scan.WordCache",
    .tp_basicsize = sizeof(WordCache),
    .tp_dealloc = (destructor)WordCache_dealloc,
    .tp_as_sequence = &WordCache_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "WordCache(max_entries, max_chars): the scan's word cache keyed by code points (see scan)",
    .tp_methods = WordCache_methods,
    .tp_new = WordCache_new,
};

static PyObject *
scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 6 && nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "scan(text, table, lookup, pieces, hot, gated[, cache])");
        return NULL;
    }
    PyObject *text = args[0], *table_obj = args[1], *lookup = args[2];
    PyObject *sets[3] = {args[3], args[4], args[5]};
    WordCache *cache = NULL;
    if (nargs == 7 && args[6] != Py_None) {
        if (!PyObject_TypeCheck(args[6], &WordCacheType)) {
            PyErr_SetString(PyExc_TypeError, "scan(): cache must be a WordCache or None");
            return NULL;
        }
        cache = (WordCache *)args[6];
    }
    if (!PyUnicode_Check(text) || !PyByteArray_Check(table_obj) || PyByteArray_GET_SIZE(table_obj) != TABLE_SIZE * 2
        || !PyDict_Check(lookup) || !PyAnySet_Check(sets[0]) || !PyAnySet_Check(sets[1]) || !PyAnySet_Check(sets[2])) {
        PyErr_SetString(PyExc_TypeError, "scan(str, bytearray of 0x20000 uint16, dict, set, set, set)");
        return NULL;
    }
    if (PyUnicode_READY(text) < 0)
        return NULL;
    const uint16_t *table = (const uint16_t *)PyByteArray_AS_STRING(table_obj);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);

    /* first pass: the images (at most one character each), their largest code point */
    Py_UCS4 stack_buf[512];
    Py_UCS4 *buf = stack_buf;
    if (n > 512) {
        buf = PyMem_Malloc(n * sizeof(Py_UCS4));
        if (buf == NULL)
            return PyErr_NoMemory();
    }
    Py_ssize_t m = 0;
    Py_UCS4 maxchar = 0;
    Py_ssize_t ntok = 0; /* the tokens: runs of non-spaces, counted in the same loop */
    int after_space = 1;
    PyObject *result = NULL;
    /* one loop per kind of the text's storage (no per-character switch) */
#define MAP_CHARS(TYPE)                                         \
    do {                                                        \
        const TYPE *p = (const TYPE *)data;                     \
        for (Py_ssize_t i = 0; i < n; i++) {                    \
            Py_UCS4 c = p[i];                                   \
            if (c >= TABLE_SIZE)                                \
                goto unknown;                                   \
            uint16_t t = table[c];                              \
            if (t >= DELETED) {                                 \
                if (t == UNKNOWN)                               \
                    goto unknown;                               \
                continue;                                       \
            }                                                   \
            buf[m++] = t;                                       \
            if (t > maxchar)                                    \
                maxchar = t;                                    \
            int space = t == ' ';                               \
            ntok += after_space & !space;                       \
            after_space = space;                                \
        }                                                       \
    } while (0)
    if (kind == PyUnicode_1BYTE_KIND)
        MAP_CHARS(Py_UCS1);
    else if (kind == PyUnicode_2BYTE_KIND)
        MAP_CHARS(Py_UCS2);
    else
        MAP_CHARS(Py_UCS4);
#undef MAP_CHARS

    PyObject *st = PyUnicode_New(m, maxchar);
    if (st == NULL)
        goto done;
    copy_chars(st, buf, m);

    PyObject *nonempty = NULL, *gvals = NULL;
    PyObject *tokens = PyList_New(ntok); /* filled in order below (NULL until then) */
    PyObject *values = PyList_New(ntok);
    nonempty = PyList_New(0);
    gvals = PyList_New(0);
    if (tokens == NULL || values == NULL || nonempty == NULL || gvals == NULL)
        goto fail;
    long flags = 0;
    Py_ssize_t i = 0, k = 0;
    while (i < m) {
        while (i < m && buf[i] == ' ')
            i++;
        if (i >= m)
            break;
        Py_ssize_t start = i;
        Py_UCS4 tmax = 0;
        uint64_t h = cache != NULL ? cache->seed : 0;
        while (i < m && buf[i] != ' ') {
            Py_UCS4 c = buf[i];
            if (c > tmax)
                tmax = c;
            h = (h ^ c) * 0x100000001b3ULL; /* FNV-1a over the code points (the cache's key) */
            i++;
        }
        Py_ssize_t len = i - start;
        int cached = cache != NULL && len <= cache->max_chars;
        if (cached) {
            h = mix64(h ^ (uint64_t)len);
            Entry *e = cache_find(cache, h, buf + start, len);
            if (e != NULL) { /* a token seen before: its str, value and marks as they were */
                PyObject *tok = e->tok, *v = e->value;
                Py_INCREF(tok);
                PyList_SET_ITEM(tokens, k, tok);
                Py_INCREF(v);
                PyList_SET_ITEM(values, k, v);
                k++;
                if (e->flags & NONEMPTY) {
                    flags |= e->flags & 7;
                    if (PyList_Append(nonempty, v) < 0 || ((e->flags & 4) && PyList_Append(gvals, v) < 0))
                        goto fail;
                }
                continue;
            }
        }
        PyObject *tok = PyUnicode_New(len, tmax); /* its own largest character: canonical */
        if (tok == NULL)
            goto fail;
        copy_chars(tok, buf + start, len);
        PyList_SET_ITEM(tokens, k, tok); /* the list owns it */
        PyObject *v = PyDict_GetItemWithError(lookup, tok); /* borrowed */
        if (v != NULL)
            Py_INCREF(v);
        else if (PyErr_Occurred())
            goto fail;
        else {
            v = PyObject_GetItem(lookup, tok); /* the dict subclass's __missing__ */
            if (v == NULL)
                goto fail;
        }
        PyList_SET_ITEM(values, k, v);
        k++;
        /* a non-empty value: which of the sets hold the token (right after its look-up: the
           sets only grow while a message is scanned, see the module docstring) */
        uint32_t marks = 0;
        if (!(PyAnySet_Check(v) && PySet_GET_SIZE(v) == 0)) {
            marks = NONEMPTY;
            if (PyList_Append(nonempty, v) < 0)
                goto fail;
            for (int b = 0; b < 3; b++) {
                int r = PySet_Contains(sets[b], tok);
                if (r < 0)
                    goto fail;
                if (r)
                    marks |= 1u << b;
            }
            flags |= marks & 7;
            if ((marks & 4) && PyList_Append(gvals, v) < 0)
                goto fail;
        }
        if (cached && cache_add(cache, h, tok, v, len, marks) < 0)
            goto fail;
    }
    PyObject *f = PyLong_FromLong(flags);
    if (f == NULL)
        goto fail;
    result = PyTuple_Pack(6, st, tokens, values, nonempty, f, gvals);
    Py_DECREF(f);
fail:
    Py_DECREF(st);
    Py_XDECREF(tokens);
    Py_XDECREF(values);
    Py_XDECREF(nonempty);
    Py_XDECREF(gvals);
    goto done;
unknown:
    result = Py_None;
    Py_INCREF(result);
done:
    if (buf != stack_buf)
        PyMem_Free(buf);
    return result;
}

/* script_counts(text) -> (Arabic-script letters, Latin letters, flags): the counts of the
   characters of monitor.rules.language's _ARABIC_SCRIPT and _LATIN classes, and flags 1: one
   of its strong Persian letters (پچژگ), 2: a weak one (کی), 4: a teh marbuta (ةۃ). */
static PyObject *
script_counts(PyObject *self, PyObject *text)
{
    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "script_counts(str)");
        return NULL;
    }
    if (PyUnicode_READY(text) < 0)
        return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t arabic = 0, latin = 0;
    long flags = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 0x0600) {
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= 0x00C0 && c <= 0x024F))
                latin++;
        }
        else if (c <= 0x06FF) {
            arabic++;
            switch (c) {
            case 0x067E: case 0x0686: case 0x0698: case 0x06AF: flags |= 1; break;  /* پ چ ژ گ */
            case 0x06A9: case 0x06CC: flags |= 2; break;  /* ک ی */
            case 0x0629: case 0x06C3: flags |= 4; break;  /* ة ۃ */
            }
        }
        else if ((c >= 0x0750 && c <= 0x077F) || (c >= 0x08A0 && c <= 0x08FF) || (c >= 0xFB50 && c <= 0xFDFF)
                 || (c >= 0xFE70 && c <= 0xFEFF))
            arabic++;
        else if (c >= 0x1E00 && c <= 0x1EFF)
            latin++;
    }
    return Py_BuildValue("nnl", arabic, latin, flags);
}

/* word_spans(values, wid) -> [(i, i + 1) for each i where wid in values[i]] (values: the
   scan's sets; an empty one is skipped without a look-up). */
static PyObject *
word_spans(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "word_spans(list of sets, wid)");
        return NULL;
    }
    PyObject *values = args[0], *wid = args[1];
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(values); i++) {
        PyObject *v = PyList_GET_ITEM(values, i);
        int r;
        if (PyAnySet_Check(v)) {
            if (PySet_GET_SIZE(v) == 0)
                continue;
            r = PySet_Contains(v, wid);
        }
        else
            r = PySequence_Contains(v, wid);
        if (r < 0)
            goto fail;
        if (r) {
            PyObject *span = Py_BuildValue("(nn)", i, i + 1);
            if (span == NULL)
                goto fail;
            r = PyList_Append(out, span);
            Py_DECREF(span);
            if (r < 0)
                goto fail;
        }
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

/* token_starts(st) -> the offsets in st where a run of non-space characters starts (st: a
   scan text, whose tokens are those runs). */
static PyObject *
token_starts(PyObject *self, PyObject *st)
{
    (void)self;
    if (!PyUnicode_Check(st)) {
        PyErr_SetString(PyExc_TypeError, "token_starts(str)");
        return NULL;
    }
    if (PyUnicode_READY(st) < 0)
        return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(st);
    int kind = PyUnicode_KIND(st);
    const void *data = PyUnicode_DATA(st);
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    int space = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyUnicode_READ(kind, data, i) == ' ') {
            space = 1;
            continue;
        }
        if (space) {
            PyObject *at = PyLong_FromSsize_t(i);
            if (at == NULL || PyList_Append(out, at) < 0) {
                Py_XDECREF(at);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(at);
            space = 0;
        }
    }
    return out;
}

static PyMethodDef methods[] = {
    {"token_starts", (PyCFunction)token_starts, METH_O,
     "token_starts(st) -> offsets where a run of non-space characters starts"},
    {"word_spans", (PyCFunction)(void (*)(void))word_spans, METH_FASTCALL,
     "word_spans(values, wid) -> [(i, i + 1) for i where wid in values[i]]"},
    {"script_counts", (PyCFunction)script_counts, METH_O,
     "script_counts(text) -> (Arabic-script letters, Latin letters, flags: 1 strong Persian, 2 weak, 4 teh marbuta)"},
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "scan(text, table, lookup, pieces, hot, gated[, cache]) -> (st, tokens, values, nonempty, flags, gvals) or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_scan", "The matcher's per-message scan in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__scan(void)
{
    if (PyType_Ready(&WordCacheType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&WordCacheType);
    if (PyModule_AddObject(m, "WordCache", (PyObject *)&WordCacheType) < 0) {
        Py_DECREF(&WordCacheType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
