/* The matcher's per-message scan in one C pass (see monitor/rules/scan.py).

   scan(text, table, astral, lookup) -> (st, tokens, values) | None

   * st: ``text`` with every character mapped through ``table`` (a bytearray of 65,536
     native uint16: the image of each BMP code point under monitor.text's scan table, DELETED
     when it maps to nothing, UNKNOWN when not known here) or, above the BMP, through
     ``astral`` (dict: code point -> image code point, or -1 when it maps to nothing): exactly
     ``monitor.text.scan_text(text)``, which maps each character alone;
   * tokens: the non-empty runs of ``st`` between spaces (``st`` holds no other whitespace):
     ``st.split()``;
   * values: ``lookup[token]`` for each token (a dict: its ``__missing__`` is called for a
     token not in it, as ``lookup[token]`` would);
   * nonempty: the values that are not empty, in order;
   * flags: 1 when a token is in ``pieces``, 2 in ``hot``, 4 in ``gated`` (sets; asked after
     every look-up, and only for tokens with a non-empty value: a token of one of these sets
     always has one, see monitor/rules/scan.py).

   None when a character of ``text`` has no known one-character image (the caller then takes
   the Python path and may teach ``table`` / ``astral`` the text's characters). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

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

static PyObject *
scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "scan(text, table, lookup, pieces, hot, gated)");
        return NULL;
    }
    PyObject *text = args[0], *table_obj = args[1], *lookup = args[2];
    PyObject *sets[3] = {args[3], args[4], args[5]};
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

    PyObject *nonempty = NULL;
    Py_ssize_t ntok = 0; /* the tokens: runs of non-spaces */
    for (Py_ssize_t i = 0; i < m; i++)
        if (buf[i] != ' ' && (i == 0 || buf[i - 1] == ' '))
            ntok++;
    PyObject *tokens = PyList_New(ntok); /* filled in order below (NULL until then) */
    PyObject *values = PyList_New(ntok);
    if (tokens == NULL || values == NULL)
        goto fail;
    Py_ssize_t i = 0, k = 0;
    while (i < m) {
        while (i < m && buf[i] == ' ')
            i++;
        if (i >= m)
            break;
        Py_ssize_t start = i;
        Py_UCS4 tmax = 0;
        while (i < m && buf[i] != ' ') {
            if (buf[i] > tmax)
                tmax = buf[i];
            i++;
        }
        PyObject *tok = PyUnicode_New(i - start, tmax); /* its own largest character: canonical */
        if (tok == NULL)
            goto fail;
        copy_chars(tok, buf + start, i - start);
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
    }
    /* after every look-up (a look-up's __missing__ may have emptied the three sets): the
       non-empty values, and which of the sets hold one of their tokens (a token of one of the
       sets has a non-empty value, see the module docstring) */
    nonempty = PyList_New(0);
    if (nonempty == NULL)
        goto fail;
    long flags = 0;
    Py_ssize_t count = PyList_GET_SIZE(values);
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *v = PyList_GET_ITEM(values, k);
        if (PyAnySet_Check(v) && PySet_GET_SIZE(v) == 0)
            continue;
        if (PyList_Append(nonempty, v) < 0)
            goto fail;
        PyObject *tok = PyList_GET_ITEM(tokens, k);
        for (int b = 0; b < 3; b++) {
            if (flags & (1L << b))
                continue;
            int r = PySet_Contains(sets[b], tok);
            if (r < 0)
                goto fail;
            if (r)
                flags |= 1L << b;
        }
    }
    PyObject *f = PyLong_FromLong(flags);
    if (f == NULL)
        goto fail;
    result = PyTuple_Pack(5, st, tokens, values, nonempty, f);
    Py_DECREF(f);
fail:
    Py_DECREF(st);
    Py_XDECREF(tokens);
    Py_XDECREF(values);
    Py_XDECREF(nonempty);
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
     "scan(text, table, lookup, pieces, hot, gated) -> (st, tokens, values, nonempty, flags) or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_scan", "The matcher's per-message scan in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__scan(void)
{
    return PyModule_Create(&module);
}
