// A C++ library of the kind a C program or an interpreter loads (a plugin, an extension's
// back end): it leaves secrets in memory freed through every form of operator delete, and
// checks the C++ contract of operator new when memory runs out. Each entry point is C.
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "secret.h"

namespace {
struct alignas(4096) Page {
    char bytes[4096];
};
int handler_calls;
void counting_handler()
{
    handler_calls++;
    std::set_new_handler(nullptr); // next time: no handler, so new throws
}
constexpr std::size_t kImpossible = std::size_t(1) << 50;
} // namespace

extern "C" {

// std::vector<char>: freed through sized operator delete(void*, size_t).
void zpt_vector(std::size_t n)
{
    std::vector<char> v(n);
    zpt_fill(v.data(), n);
}

// std::string: sized delete too, through its allocator.
void zpt_string(std::size_t n)
{
    std::string s(n, 'x');
    zpt_fill(&s[0], n);
}

// new[] / delete[].
void zpt_new_array(std::size_t n)
{
    char *p = new char[n];
    zpt_fill(p, n);
    delete[] p;
}

// A vector of an over-aligned type grown across sizes: aligned new, sized aligned delete.
void zpt_aligned_vector(std::size_t n)
{
    std::vector<Page> v(100);
    for (auto &pg : v)
        zpt_fill(pg.bytes, sizeof pg.bytes);
    v.resize(n / sizeof(Page));
    for (auto &pg : v)
        zpt_fill(pg.bytes, sizeof pg.bytes);
}

// operator new(n, align) with the matching sized aligned delete, and the unsized one.
void zpt_aligned_new(std::size_t n)
{
    void *p = ::operator new(n, std::align_val_t(65536));
    zpt_fill(p, n);
    ::operator delete(p, n, std::align_val_t(65536));
    void *q = ::operator new[](n, std::align_val_t(4096), std::nothrow);
    if (q) {
        zpt_fill(q, n);
        ::operator delete[](q, std::align_val_t(4096), std::nothrow);
    }
}

// Memory runs out: 0 when every form keeps the C++ contract.
int zpt_out_of_memory(void)
{
    int bad = 0;
    if (new (std::nothrow) char[kImpossible] != nullptr)
        bad |= 1;
    if (::operator new(kImpossible, std::align_val_t(4096), std::nothrow) != nullptr)
        bad |= 2;
    try {
        char *volatile p = new char[kImpossible];
        (void)p;
        bad |= 4;
    } catch (const std::bad_alloc &) {
    }
    try {
        void *volatile p = ::operator new(kImpossible, std::align_val_t(8192));
        (void)p;
        bad |= 8;
    } catch (const std::bad_alloc &) {
    }
    handler_calls = 0;
    std::set_new_handler(counting_handler);
    try {
        char *volatile p = new char[kImpossible];
        (void)p;
        bad |= 16;
    } catch (const std::bad_alloc &) {
    }
    if (handler_calls != 1)
        bad |= 32;
    // A handler that throws: the nothrow form turns it into NULL.
    std::set_new_handler([] { throw std::bad_alloc(); });
    if (new (std::nothrow) char[kImpossible] != nullptr)
        bad |= 64;
    std::set_new_handler(nullptr);
    // new(0) is a unique, deletable pointer.
    char *a = new char[0], *b = new char[0];
    if (a == nullptr || a == b)
        bad |= 128;
    delete[] a;
    delete[] b;
    return bad;
}

// Secret words in `rounds` fresh blocks of n bytes from operator new.
std::size_t zpt_scan_new(std::size_t n, int rounds)
{
    std::size_t hits = 0;
    std::vector<char *> held;
    for (int i = 0; i < rounds; i++) {
        char *p = static_cast<char *>(::operator new(n));
        hits += zpt_count(p, n);
        held.push_back(p);
    }
    for (char *p : held)
        ::operator delete(p);
    return hits;
}

} // extern "C"
