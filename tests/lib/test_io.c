/*
 * test_io.c - readn/writen against short reads, short writes, EINTR, EOF and
 * non-blocking sockets.
 */
#include "testutil.h"

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 7 + i / 251);
}

/* ---- a thread that interrupts the main thread's blocked system calls ----- */

struct interrupter {
    pthread_t target;
    pid_t target_tid;
    long syscall_nr;            /* SYS_read or SYS_write */
    int fd;                     /* data goes in here between the signals */
    const char *data;
    size_t len;
    int blocked[3];             /* target was seen blocked before signal i */
};

/*
 * Signal the target while it sleeps in the system call, send the first 3 bytes,
 * signal it again once it blocks again, then send the rest.
 */
static void *interrupt_reader(void *arg)
{
    struct interrupter *it = arg;

    it->blocked[0] = wait_blocked_in(it->target_tid, it->syscall_nr);
    pthread_kill(it->target, SIGUSR1);
    send_all(it->fd, it->data, 3);
    it->blocked[1] = wait_blocked_in(it->target_tid, it->syscall_nr);
    pthread_kill(it->target, SIGUSR1);
    send_all(it->fd, it->data + 3, it->len - 3);
    return NULL;
}

/* Only signal once the target blocks (used to check the set-up itself). */
static void *interrupt_once(void *arg)
{
    struct interrupter *it = arg;

    it->blocked[0] = wait_blocked_in(it->target_tid, it->syscall_nr);
    pthread_kill(it->target, SIGUSR1);
    return NULL;
}

static void test_readn_whole_and_zero(void)
{
    int sv[2];
    char buf[16];

    stream_pair(sv);
    send_str(sv[1], "0123456789");
    CHECK_INT(readn(sv[0], buf, 10), ==, 10);
    CHECK_MEM(buf, "0123456789", 10);
    CHECK_INT(readn(sv[0], buf, 0), ==, 0);
    close_pair(sv);
}

/* The writer sends one byte at a time: many reads return 1 byte. */
static void test_readn_short_reads(void)
{
    int sv[2];
    unsigned char data[200], buf[200];

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = pattern(i);
    stream_pair(sv);
    struct dribble d = { sv[1], data, sizeof(data), 1, 200, 0 };
    pthread_t t = start_thread(dribble_thread, &d);
    CHECK_INT(readn(sv[0], buf, sizeof(buf)), ==, sizeof(buf));
    CHECK_MEM(buf, data, sizeof(data));
    join_thread(t);
    close_pair(sv);
}

static void test_readn_eof_partial(void)
{
    int sv[2];
    char buf[10];

    stream_pair(sv);
    send_str(sv[1], "hello");
    close(sv[1]);
    sv[1] = -1;
    CHECK_INT(readn(sv[0], buf, sizeof(buf)), ==, 5);
    CHECK_MEM(buf, "hello", 5);
    CHECK_INT(readn(sv[0], buf, sizeof(buf)), ==, 0);
    close_pair(sv);
}

/* Check the method first: a plain read() really gets EINTR here. */
static void test_eintr_setup_is_effective(void)
{
    int sv[2];
    char c;
    struct interrupter it = { pthread_self(), gettid(), SYS_read, -1, NULL, 0, { 0 } };

    stream_pair(sv);
    pthread_t t = start_thread(interrupt_once, &it);
    CHECK_ERRNO(read(sv[0], &c, 1), EINTR);
    join_thread(t);
    CHECK(it.blocked[0]);
    close_pair(sv);
}

static void test_readn_retries_eintr(void)
{
    int sv[2];
    char buf[8];
    struct interrupter it = { pthread_self(), gettid(), SYS_read, -1, "abcdefgh", 8, { 0 } };

    stream_pair(sv);
    it.fd = sv[1];
    sig_atomic_t before = signals_caught;
    pthread_t t = start_thread(interrupt_reader, &it);
    CHECK_INT(readn(sv[0], buf, sizeof(buf)), ==, 8);
    join_thread(t);
    CHECK_MEM(buf, "abcdefgh", 8);
    CHECK(it.blocked[0]);
    CHECK(it.blocked[1]);
    CHECK_INT(signals_caught - before, ==, 2);
    close_pair(sv);
}

static void test_readn_nonblocking(void)
{
    int sv[2];
    char buf[10];

    stream_pair(sv);
    CHECK_INT(make_nonblocking(sv[0]), ==, 0);
    CHECK_ERRNO(readn(sv[0], buf, sizeof(buf)), EAGAIN);
    send_str(sv[1], "abc");
    CHECK_INT(readn(sv[0], buf, sizeof(buf)), ==, 3);   /* partial count, not -1 */
    CHECK_MEM(buf, "abc", 3);
    close_pair(sv);
}

static void test_bad_fd(void)
{
    char buf[4] = "abc";

    CHECK_ERRNO(readn(-1, buf, sizeof(buf)), EBADF);
    CHECK_ERRNO(writen(-1, buf, sizeof(buf)), EBADF);
    CHECK_INT(writen(-1, buf, 0), ==, 0);
}

/* ---- writen -------------------------------------------------------------- */

struct drain {
    int fd;
    unsigned char *buf;         /* receives everything */
    size_t cap;
    size_t got;
    size_t chunk;               /* read() size */
    int start_when_blocked;     /* first wait until the writer blocks in write() */
    pid_t writer_tid;
    pthread_t writer;
    int signal_writer;          /* interrupt the writer's blocked write() once */
    int writer_was_blocked;
};

static void *drain_thread(void *arg)
{
    struct drain *d = arg;

    if (d->start_when_blocked) {
        d->writer_was_blocked = wait_blocked_in(d->writer_tid, SYS_write);
        if (d->signal_writer) {
            pthread_kill(d->writer, SIGUSR1);
            /* writen must call write() again, and block again: the buffer is full. */
            d->writer_was_blocked &= wait_blocked_in(d->writer_tid, SYS_write);
        }
    }
    while (d->got < d->cap) {
        size_t want = d->cap - d->got < d->chunk ? d->cap - d->got : d->chunk;
        ssize_t r = read(d->fd, d->buf + d->got, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        d->got += (size_t)r;
    }
    return NULL;
}

/* 1 MiB through a 4 KiB send buffer while signals keep cutting write() short. */
static void test_writen_large_small_sndbuf(void)
{
    enum { N = 1 << 20 };
    int sv[2];
    int small = 4096;
    unsigned char *data = malloc(N), *got = malloc(N);

    if (data == NULL || got == NULL)
        DIE("malloc");
    for (size_t i = 0; i < N; i++)
        data[i] = pattern(i);
    stream_pair(sv);
    if (setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)) < 0 ||
        setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) < 0)
        DIE("setsockopt SO_SNDBUF");

    struct drain d = { .fd = sv[0], .buf = got, .cap = N, .chunk = 777 };
    struct bombard b = { .target = { pthread_self() }, .count = 1 };
    sig_atomic_t before = signals_caught;
    pthread_t reader = start_thread(drain_thread, &d);
    pthread_t signaller = start_thread(bombard_thread, &b);
    wait_for_signal(before);                    /* the bombardment has begun */

    CHECK_INT(writen(sv[1], data, N), ==, N);
    atomic_store(&b.stop, 1);
    join_thread(signaller);
    join_thread(reader);
    CHECK_INT(d.got, ==, N);
    CHECK_MEM(got, data, N);
    CHECK(signals_caught - before > 0);
    close_pair(sv);
    free(data);
    free(got);
}

/*
 * The send buffer is already full: writen's first write() gets EINTR, and a later
 * one returns a short count; writen must carry on with the rest, in order.
 */
static void test_writen_interrupted(void)
{
    enum { CAP = 1 << 20, N = 100000 };
    int sv[2];
    unsigned char *got = malloc(CAP), *data = malloc(N);

    if (got == NULL || data == NULL)
        DIE("malloc");
    for (size_t i = 0; i < N; i++)
        data[i] = pattern(i);
    stream_pair(sv);
    size_t filled = fill_send_buffer(sv[1]);
    if (filled + N > CAP)
        DIE("socket buffer larger than expected: %zu bytes", filled);

    struct squeeze s = { .fd = sv[0], .writer = pthread_self(), .writer_tid = gettid(),
                         .nr = SYS_write, .first_drain = filled + 5000, .buf = got,
                         .expect = filled + N };
    sig_atomic_t before = signals_caught;
    pthread_t reader = start_thread(squeeze_thread, &s);
    CHECK_INT(writen(sv[1], data, N), ==, N);
    join_thread(reader);
    CHECK(s.blocked[0] && s.blocked[1] && s.blocked[2]);
    CHECK_INT(signals_caught - before, ==, 2);
    CHECK_INT(s.got, ==, filled + N);
    if (s.got == filled + N)
        CHECK_MEM(got + filled, data, N);
    close_pair(sv);
    free(got);
    free(data);
}

static void test_writen_epipe(void)
{
    int sv[2];

    stream_pair(sv);
    close(sv[0]);
    sv[0] = -1;
    CHECK_ERRNO(writen(sv[1], "x", 1), EPIPE);      /* SIGPIPE is ignored in main */
    close_pair(sv);
}

int main(void)
{
    watchdog_start(5);
    signal(SIGPIPE, SIG_IGN);
    install_interrupting_handler();

    RUN(test_readn_whole_and_zero);
    RUN(test_readn_short_reads);
    RUN(test_readn_eof_partial);
    RUN(test_eintr_setup_is_effective);
    RUN(test_readn_retries_eintr);
    RUN(test_readn_nonblocking);
    RUN(test_bad_fd);
    RUN(test_writen_large_small_sndbuf);
    RUN(test_writen_interrupted);
    RUN(test_writen_epipe);
    return check_exit_status();
}
