/*
 * testutil.h - plumbing shared by the lib tests: bounded waits, socket pairs,
 * signals that interrupt system calls, helper threads, and child processes
 * whose output and exit status we capture.
 */
#ifndef SOCKLAB_TESTUTIL_H
#define SOCKLAB_TESTUTIL_H

#include "check.h"
#include "common.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

/* Something went wrong in the test itself, not in the code under test. */
#define DIE(...)                                                                \
    do {                                                                        \
        fprintf(stderr, "%s:%d: test setup failed: ", __FILE__, __LINE__);     \
        fprintf(stderr, __VA_ARGS__);                                           \
        fprintf(stderr, " (%s)\n", strerror(errno));                           \
        exit(2);                                                                \
    } while (0)

static inline void watchdog_fired(int sig)
{
    static const char msg[] = "watchdog: test took too long, something blocked\n";
    (void)sig;
    (void)!write(2, msg, sizeof(msg) - 1);
    _exit(2);
}

/*
 * Whatever blocks by mistake, the program ends within `seconds` of CPU-bound
 * work on a quiet machine.  Each wait in a test has its own tighter bound
 * (SO_RCVTIMEO etc.); this is the last resort, so it is generous: the whole
 * program takes under a second here, but over 5 s in a VM under software
 * emulation with ASan.  SOCKLAB_SLOWNESS (as ./lab sets it) stretches it more.
 */
static inline void watchdog_start(unsigned seconds)
{
    const char *slowness = getenv("SOCKLAB_SLOWNESS");
    double factor = slowness ? atof(slowness) : 1.0;
    if (factor < 1.0)
        factor = 1.0;
    signal(SIGALRM, watchdog_fired);
    alarm((unsigned)(seconds * 12 * factor));
}

static inline long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/*
 * The bound on waiting for something that takes microseconds when the code is right
 * (a forked child's exit, a thread blocking, a peer's bytes): it only stops a hang, so
 * it is generous -- under load (CI, a VM under emulation, a niced container) a starved
 * thread can wait seconds, and that must never read as a bug.
 */
#define HANG_BOUND_MS 20000

/* Blocking reads and writes on fd give up with EAGAIN after ms milliseconds. */
static inline void set_timeouts(int fd, long ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
        DIE("setsockopt SO_RCVTIMEO/SO_SNDTIMEO");
}

/* A connected AF_UNIX stream pair, each blocking call on it bounded (HANG_BOUND_MS). */
static inline void stream_pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        DIE("socketpair");
    set_timeouts(sv[0], HANG_BOUND_MS);
    set_timeouts(sv[1], HANG_BOUND_MS);
}

static inline void close_pair(int sv[2])
{
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    sv[0] = sv[1] = -1;
}

static inline void send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            DIE("write");
        p += w;
        len -= (size_t)w;
    }
}

static inline void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

/* ---- signals that interrupt blocked system calls ------------------------- */

static volatile sig_atomic_t signals_caught;

static inline void count_signal(int sig)
{
    (void)sig;
    signals_caught++;
}

/* SIGUSR1 runs count_signal; no SA_RESTART, so a blocked read/write gets EINTR. */
static inline void install_interrupting_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = count_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    if (sigaction(SIGUSR1, &sa, NULL) < 0)
        DIE("sigaction");
}

/*
 * Wait (at most HANG_BOUND_MS) until thread tid sleeps inside system call nr, read
 * from /proc/self/task/TID/syscall and .../stat.  Returns 1 if it does.
 */
static inline int wait_blocked_in(pid_t tid, long nr)
{
    char path[64], text[256];
    long long deadline = now_ms() + HANG_BOUND_MS;

    do {
        int in_call = 0, sleeping = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
        if ((f = fopen(path, "r")) != NULL) {
            if (fgets(text, sizeof(text), f) != NULL)
                in_call = strtol(text, NULL, 10) == nr && text[0] != 'r';
            fclose(f);
        }
        snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
        if ((f = fopen(path, "r")) != NULL) {
            if (fgets(text, sizeof(text), f) != NULL) {
                char *paren = strrchr(text, ')');
                sleeping = paren != NULL && paren[1] == ' ' && paren[2] == 'S';
            }
            fclose(f);
        }
        if (in_call && sleeping)
            return 1;
        sleep_ms(1);
    } while (now_ms() < deadline);
    return 0;
}

/* ---- helper threads ------------------------------------------------------ */

struct bombard {
    pthread_t target[2];        /* threads to interrupt (the second may be unset) */
    int count;
    atomic_int stop;
};

/* Keep interrupting the targets: blocked calls return short counts or EINTR. */
static inline void *bombard_thread(void *arg)
{
    struct bombard *b = arg;

    while (!atomic_load(&b->stop)) {
        for (int i = 0; i < b->count; i++)
            pthread_kill(b->target[i], SIGUSR1);
        struct timespec ts = { 0, 100 * 1000 };
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* Wait (at most 1 s) until a signal arrives after `before` were counted. */
static inline void wait_for_signal(sig_atomic_t before)
{
    long long deadline = now_ms() + 1000;
    while (signals_caught == before && now_ms() < deadline)
        sleep_ms(1);
}

static inline pthread_t start_thread(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    int err = pthread_create(&t, NULL, fn, arg);
    if (err != 0) {
        errno = err;
        DIE("pthread_create");
    }
    return t;
}

static inline void join_thread(pthread_t t)
{
    int err = pthread_join(t, NULL);
    if (err != 0) {
        errno = err;
        DIE("pthread_join");
    }
}

/* Sends data in pieces of `piece` bytes, pausing pause_us between them. */
struct dribble {
    int fd;
    const void *data;
    size_t len;
    size_t piece;
    long pause_us;
    int close_after;            /* close fd when done (the reader then sees EOF) */
};

static inline void *dribble_thread(void *arg)
{
    struct dribble *d = arg;
    const char *p = d->data;

    for (size_t off = 0; off < d->len; off += d->piece) {
        size_t n = d->len - off < d->piece ? d->len - off : d->piece;
        send_all(d->fd, p + off, n);
        if (d->pause_us > 0) {
            struct timespec ts = { 0, d->pause_us * 1000 };
            nanosleep(&ts, NULL);
        }
    }
    if (d->close_after)
        close(d->fd);
    return NULL;
}

/* ---- a writer stuck on a full socket ------------------------------------- */

/*
 * Shrink fd's send buffer and fill it until write() would block, then make fd
 * blocking again: the next write on it blocks at once.  Returns the bytes queued.
 */
static inline size_t fill_send_buffer(int fd)
{
    int small = 8192;
    char junk[1024];
    size_t filled = 0;
    int flags = fcntl(fd, F_GETFL);

    memset(junk, 'f', sizeof(junk));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)) < 0 || flags < 0 ||
        fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        DIE("fill_send_buffer set-up");
    for (;;) {
        ssize_t w = write(fd, junk, sizeof(junk));
        if (w < 0 && errno == EAGAIN)
            break;
        if (w <= 0)
            DIE("write");
        filled += (size_t)w;
    }
    if (fcntl(fd, F_SETFL, flags) < 0)
        DIE("fcntl");
    return filled;
}

/*
 * Runs beside a writer blocked in system call nr on a full socket (see above):
 *   1. interrupts it before it sent anything: that call fails with EINTR;
 *   2. reads first_drain bytes so it can send some, waits until it is stuck
 *      again inside the same call and interrupts it: a short count;
 *   3. reads everything else (up to expect bytes, or EOF) into buf.
 */
struct squeeze {
    int fd;                     /* the reading end */
    pthread_t writer;
    pid_t writer_tid;
    long nr;                    /* SYS_write, SYS_writev */
    size_t first_drain;
    unsigned char *buf;
    size_t expect;
    size_t got;
    int blocked[3];             /* the writer was seen blocked at each step */
};

static inline void squeeze_read(struct squeeze *s, size_t upto)
{
    while (s->got < upto) {
        ssize_t r = read(s->fd, s->buf + s->got, upto - s->got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        s->got += (size_t)r;
    }
}

static inline void *squeeze_thread(void *arg)
{
    struct squeeze *s = arg;

    s->blocked[0] = wait_blocked_in(s->writer_tid, s->nr);
    pthread_kill(s->writer, SIGUSR1);
    s->blocked[1] = wait_blocked_in(s->writer_tid, s->nr);
    squeeze_read(s, s->first_drain);
    s->blocked[2] = wait_blocked_in(s->writer_tid, s->nr);
    pthread_kill(s->writer, SIGUSR1);
    squeeze_read(s, s->expect);
    return NULL;
}

/* ---- child processes ----------------------------------------------------- */

struct child_result {
    int status;                 /* from waitpid */
    char out[4096];             /* what it wrote to stdout, NUL-terminated */
    char err[4096];             /* ... and to stderr */
};

/*
 * Run fn(arg) in a child whose stdout and stderr are pipes; collect both and the
 * exit status (the child exits 0 if fn returns).  Killed after HANG_BOUND_MS.
 */
static inline void run_child(void (*fn)(void *), void *arg,
                             struct child_result *res)
{
    int out[2], err[2];
    size_t lens[2] = { 0, 0 };
    char *bufs[2] = { res->out, res->err };
    long long deadline = now_ms() + HANG_BOUND_MS;
    pid_t pid;

    memset(res, 0, sizeof(*res));
    if (pipe(out) < 0 || pipe(err) < 0)
        DIE("pipe");
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0)
        DIE("fork");
    if (pid == 0) {
        if (dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
            _exit(99);
        close(out[0]); close(out[1]); close(err[0]); close(err[1]);
        alarm(0);
        fn(arg);
        exit(0);
    }
    close(out[1]);
    close(err[1]);

    struct pollfd pfd[2] = { { out[0], POLLIN, 0 }, { err[0], POLLIN, 0 } };
    int open_count = 2;
    while (open_count > 0) {
        long long left = deadline - now_ms();
        int ready = left > 0 ? poll(pfd, 2, (int)left) : 0;
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0) {
            fprintf(stderr, "child %d did not finish in time, killing it\n", (int)pid);
            kill(pid, SIGKILL);
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (pfd[i].fd < 0 || pfd[i].revents == 0)
                continue;
            size_t room = sizeof(res->out) - 1 - lens[i];
            char scratch[256];
            ssize_t r = room > 0 ? read(pfd[i].fd, bufs[i] + lens[i], room)
                                 : read(pfd[i].fd, scratch, sizeof(scratch));
            if (r > 0 && room > 0)
                lens[i] += (size_t)r;
            if (r == 0 || (r < 0 && errno != EINTR)) {
                close(pfd[i].fd);
                pfd[i].fd = -1;
                open_count--;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (pfd[i].fd >= 0)
            close(pfd[i].fd);
    while (waitpid(pid, &res->status, 0) < 0) {
        if (errno != EINTR)
            DIE("waitpid");
    }
}

#endif /* SOCKLAB_TESTUTIL_H */
