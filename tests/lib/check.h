/*
 * check.h - the smallest assertion kit: a failed check prints where and what,
 * counts, and lets the test go on; check_exit_status() turns the count into the
 * program's exit status for CTest.
 */
#ifndef SOCKLAB_CHECK_H
#define SOCKLAB_CHECK_H

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* Atomic: helper threads may check too. */
static atomic_int check_failures;

#define CHECK_FAILED_(...)                                                      \
    do {                                                                        \
        atomic_fetch_add(&check_failures, 1);                                   \
        fprintf(stderr, __VA_ARGS__);                                           \
    } while (0)

#define CHECK(expr)                                                             \
    do {                                                                        \
        if (!(expr))                                                            \
            CHECK_FAILED_("%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); \
    } while (0)

/* CHECK_INT(r, ==, 5): also prints both values (each evaluated once). */
#define CHECK_INT(a, op, b)                                                     \
    do {                                                                        \
        long long a_ = (long long)(a), b_ = (long long)(b);                     \
        if (!(a_ op b_))                                                        \
            CHECK_FAILED_("%s:%d: check failed: %s %s %s (%lld vs %lld)\n",     \
                          __FILE__, __LINE__, #a, #op, #b, a_, b_);             \
    } while (0)

/* CHECK_ERRNO(call, E): call returned -1 with errno E. */
#define CHECK_ERRNO(call, e)                                                    \
    do {                                                                        \
        long long r_ = (long long)(call);                                       \
        int errno_ = errno;                                                     \
        if (r_ != -1 || errno_ != (e))                                          \
            CHECK_FAILED_("%s:%d: check failed: %s gives -1/%s (got %lld, "     \
                          "errno %d %s)\n", __FILE__, __LINE__, #call, #e, r_,  \
                          errno_, strerror(errno_));                            \
    } while (0)

#define CHECK_STR(a, b)                                                         \
    do {                                                                        \
        const char *a_ = (a), *b_ = (b);                                        \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                    \
            CHECK_FAILED_("%s:%d: check failed: %s equals %s (\"%s\" vs \"%s\")\n", \
                          __FILE__, __LINE__, #a, #b, a_ ? a_ : "(null)",       \
                          b_ ? b_ : "(null)");                                  \
    } while (0)

/* The n bytes at a equal the n bytes at b. */
#define CHECK_MEM(a, b, n)                                                      \
    do {                                                                        \
        if (memcmp((a), (b), (n)) != 0)                                         \
            CHECK_FAILED_("%s:%d: check failed: %zu bytes of %s equal %s\n",    \
                          __FILE__, __LINE__, (size_t)(n), #a, #b);             \
    } while (0)

/* Run one test function, naming it so a failure can be placed. */
#define RUN(test)                                                               \
    do {                                                                        \
        int before_ = atomic_load(&check_failures);                             \
        test();                                                                 \
        printf("%s %s\n", atomic_load(&check_failures) == before_ ? "ok  " : "FAIL", #test); \
    } while (0)

static inline int check_exit_status(void)
{
    int n = atomic_load(&check_failures);

    if (n != 0)
        fprintf(stderr, "%d check(s) failed\n", n);
    return n != 0;
}

#endif /* SOCKLAB_CHECK_H */
