/*
 * error.c - reporting failures: fatal(), warning(), TODO, and program_init().
 *
 * Every message is formatted into one buffer and written with a single stdio call
 * on (unbuffered) stderr, so lines from several processes or threads do not mix.
 */
#include "common.h"

/* "<message>: <strerror> (<errnum>)\n", or "<message>\n" when errnum is 0. */
__attribute__((format(printf, 2, 0)))
static void report(int errnum, const char *fmt, va_list ap)
{
    char msg[1024];
    char reason[256];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* Output printed before the failure must come first: flush it before stderr. */
    fflush(stdout);
    if (errnum != 0)
        /* GNU strerror_r: thread-safe, returns the string (maybe not in reason). */
        fprintf(stderr, "%s: %s (%d)\n", msg, strerror_r(errnum, reason, sizeof(reason)),
                errnum);
    else
        fprintf(stderr, "%s\n", msg);
}

void fatal(int errnum, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    report(errnum, fmt, ap);
    va_end(ap);
    exit(1);
}

void warning(int errnum, const char *fmt, ...)
{
    int saved_errno = errno;    /* callers often go on to test errno */
    va_list ap;

    va_start(ap, fmt);
    report(errnum, fmt, ap);
    va_end(ap);
    errno = saved_errno;
}

void todo_reached(const char *file, int line, const char *what)
{
    fflush(stdout);
    fprintf(stderr, "TODO not done: %s (%s:%d)\n", what, file, line);
    exit(TODO_EXIT_STATUS);
}

/*
 * Runs before main() in every program linked with lib/.  A grader reads stdout
 * through a pipe, where stdio would otherwise buffer whole blocks and a line
 * printed just before a crash or a blocking call would never show up.
 */
__attribute__((constructor)) void program_init(void)
{
    /* ISO C allows setvbuf only before the stream's first I/O: do it just once. */
    static int done;

    if (done)
        return;
    done = 1;
    (void)setvbuf(stdout, NULL, _IOLBF, 0);   /* cannot fail with a NULL buffer */
}
