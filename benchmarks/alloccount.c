// alloccount.c — cc -O2 -shared -fPIC -o /tmp/liballoccount.so alloccount.c
// Counts allocation calls (malloc, calloc, realloc, *memalign) for the whole process and per thread, for
// callsctl-bench run with LD_PRELOAD (scripts/bench.sh does this). callsctl_alloc_count_thread() reads the calling
// thread's count: the bench reads it on the media server's event-loop thread to charge the server only.
#include <stddef.h>
#include <errno.h>
extern void *__libc_malloc(size_t); extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t); extern void *__libc_memalign(size_t, size_t);
static unsigned long counter;
// initial-exec: a preloaded library gets static TLS, so reading it never calls malloc (no recursion).
static __thread unsigned long thread_counter __attribute__((tls_model("initial-exec")));
long callsctl_alloc_count(void) { return (long)__atomic_load_n(&counter, __ATOMIC_RELAXED); }
long callsctl_alloc_count_thread(void) { return (long)thread_counter; }
#define COUNT() do { __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED); thread_counter++; } while (0)
void *malloc(size_t n) { COUNT(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { COUNT(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { COUNT(); return __libc_realloc(p, n); }
void *aligned_alloc(size_t a, size_t n) { COUNT(); return __libc_memalign(a, n); }
void *memalign(size_t a, size_t n) { COUNT(); return __libc_memalign(a, n); }
int posix_memalign(void **out, size_t a, size_t n) {
    COUNT();
    if (a % sizeof(void *) != 0 || (a & (a - 1)) != 0) return EINVAL;
    void *p = __libc_memalign(a, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
