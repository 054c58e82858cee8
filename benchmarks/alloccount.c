// alloccount.c — cc -O2 -shared -fPIC -o /tmp/liballoccount.so alloccount.c
// Counts allocation calls (malloc, calloc, realloc, *memalign) for the whole process and per thread, and the heap
// bytes each thread allocated minus those it freed (malloc_usable_size), for callsctl-bench run with LD_PRELOAD
// (scripts/bench.sh does this). The bench reads the per-thread figures on the media server's event-loop thread, so
// the server is charged for its own allocations only, not the in-process clients'.
#include <stddef.h>
#include <errno.h>
#include <malloc.h>
extern void *__libc_malloc(size_t); extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t); extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);
static unsigned long counter;
// initial-exec: a preloaded library gets static TLS, so touching these never calls malloc (no recursion).
static __thread unsigned long thread_counter __attribute__((tls_model("initial-exec")));
static __thread long thread_bytes __attribute__((tls_model("initial-exec")));
long callsctl_alloc_count(void) { return (long)__atomic_load_n(&counter, __ATOMIC_RELAXED); }
long callsctl_alloc_count_thread(void) { return (long)thread_counter; }
long callsctl_alloc_bytes_thread(void) { return thread_bytes; }
#define COUNT() do { __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED); thread_counter++; } while (0)
#define ADD(p) do { if (p) thread_bytes += (long)malloc_usable_size(p); } while (0)
void *malloc(size_t n) { COUNT(); void *p = __libc_malloc(n); ADD(p); return p; }
void *calloc(size_t a, size_t b) { COUNT(); void *p = __libc_calloc(a, b); ADD(p); return p; }
void *realloc(void *old, size_t n) {
    COUNT();
    if (old) thread_bytes -= (long)malloc_usable_size(old);
    void *p = __libc_realloc(old, n);
    if (p) ADD(p); else if (old && n) ADD(old);
    return p;
}
void *aligned_alloc(size_t a, size_t n) { COUNT(); void *p = __libc_memalign(a, n); ADD(p); return p; }
void *memalign(size_t a, size_t n) { COUNT(); void *p = __libc_memalign(a, n); ADD(p); return p; }
int posix_memalign(void **out, size_t a, size_t n) {
    COUNT();
    if (a % sizeof(void *) != 0 || (a & (a - 1)) != 0) return EINVAL;
    void *p = __libc_memalign(a, n);
    if (!p) return ENOMEM;
    ADD(p);
    *out = p;
    return 0;
}
void free(void *p) {
    if (!p) return;
    thread_bytes -= (long)malloc_usable_size(p);
    __libc_free(p);
}
