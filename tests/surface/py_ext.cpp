// A Python extension module written in C++ (python3 itself links no C++ runtime): the same
// cases as the C host, run from inside the interpreter.
//   zpcxx.leave(case, n)  frees a secret of n bytes through that C++ path
//   zpcxx.scan(n)         secret words in fresh blocks of n bytes (malloc and operator new)
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdlib>
#include <cstring>

#include "secret.h"

extern "C" {
void zpt_vector(std::size_t n);
void zpt_string(std::size_t n);
void zpt_new_array(std::size_t n);
void zpt_aligned_vector(std::size_t n);
void zpt_aligned_new(std::size_t n);
std::size_t zpt_scan_new(std::size_t n, int rounds);
}

static PyObject *leave(PyObject *, PyObject *args)
{
    const char *c;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "sn", &c, &n))
        return nullptr;
    static const struct {
        const char *name;
        void (*fn)(std::size_t);
    } cases[] = {{"vector", zpt_vector}, {"string", zpt_string}, {"new_array", zpt_new_array},
                 {"aligned_vector", zpt_aligned_vector}, {"aligned_new", zpt_aligned_new}};
    for (const auto &k : cases)
        if (std::strcmp(k.name, c) == 0) {
            for (int i = 0; i < 4; i++)
                k.fn(static_cast<std::size_t>(n));
            Py_RETURN_NONE;
        }
    PyErr_SetString(PyExc_ValueError, "unknown case");
    return nullptr;
}

static PyObject *scan(PyObject *, PyObject *args)
{
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "n", &n))
        return nullptr;
    enum { ROUNDS = 64 };
    void *held[ROUNDS];
    std::size_t hits = 0;
    for (auto &p : held) {
        p = std::malloc(static_cast<std::size_t>(n));
        if (p)
            hits += zpt_count(p, static_cast<std::size_t>(n));
    }
    for (auto p : held)
        std::free(p);
    hits += zpt_scan_new(static_cast<std::size_t>(n), ROUNDS);
    return PyLong_FromSize_t(hits);
}

static PyMethodDef methods[] = {
    {"leave", leave, METH_VARARGS, "free a secret through a C++ path"},
    {"scan", scan, METH_VARARGS, "secret words in fresh blocks"},
    {nullptr, nullptr, 0, nullptr},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "zpcxx", nullptr, -1, methods,
                                    nullptr, nullptr, nullptr, nullptr};

PyMODINIT_FUNC PyInit_zpcxx(void)
{
    return PyModule_Create(&module);
}
