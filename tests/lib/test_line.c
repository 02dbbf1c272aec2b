/*
 * test_line.c - read_line: pipelined lines, lines split anywhere (including
 * between '\r' and '\n'), overlong lines at and around every limit, EOF,
 * non-blocking sockets and EINTR.
 *
 * Every line buffer is malloc'ed with exactly cap bytes, so ASan reports any
 * write past line[cap-1].
 */
#include "testutil.h"

/* read_line returns exactly `want` (its length, and the bytes). */
#define EXPECT_LINE(lr, cap, want)                                              \
    do {                                                                        \
        char *l_ = malloc(cap);                                                 \
        if (l_ == NULL)                                                         \
            DIE("malloc");                                                      \
        ssize_t r_ = read_line((lr), l_, (cap));                                \
        CHECK_INT(r_, ==, (ssize_t)strlen(want));                               \
        if (r_ >= 0)                                                            \
            CHECK_STR(l_, (want));                                              \
        free(l_);                                                               \
    } while (0)

/* read_line fails with errno e and leaves the line buffer untouched. */
#define EXPECT_FAIL(lr, cap, e)                                                 \
    do {                                                                        \
        size_t cap_ = (cap);                                                    \
        char *l_ = malloc(cap_);                                                \
        if (l_ == NULL)                                                         \
            DIE("malloc");                                                      \
        memset(l_, '#', cap_);                                                  \
        CHECK_ERRNO(read_line((lr), l_, cap_), e);                              \
        size_t i_ = 0;                                                          \
        while (i_ < cap_ && l_[i_] == '#')                                      \
            i_++;                                                               \
        CHECK_INT(i_, ==, cap_);                                                \
        free(l_);                                                               \
    } while (0)

#define EXPECT_EOF(lr) EXPECT_LINE(lr, 16, "")

static char *repeat(char c, size_t n, const char *tail)
{
    char *s = malloc(n + strlen(tail) + 1);
    if (s == NULL)
        DIE("malloc");
    memset(s, c, n);
    strcpy(s + n, tail);
    return s;
}

/* A socket pair and a reader on sv[0]; the test writes to sv[1]. */
struct fixture {
    int sv[2];
    struct line_reader lr;
};

static void setup(struct fixture *f, int nonblocking)
{
    stream_pair(f->sv);
    if (nonblocking && make_nonblocking(f->sv[0]) < 0)
        DIE("make_nonblocking");
    line_reader_init(&f->lr, f->sv[0]);
}

static void hang_up(struct fixture *f)
{
    close(f->sv[1]);
    f->sv[1] = -1;
}

static void teardown(struct fixture *f)
{
    close_pair(f->sv);
}

static void test_pipelined_lines(void)
{
    struct fixture f;

    setup(&f, 0);
    send_str(f.sv[1], "a\nb\r\nc\n");
    hang_up(&f);
    EXPECT_LINE(&f.lr, 16, "a\n");
    CHECK_INT(line_reader_pending(&f.lr), ==, 5);      /* "b\r\nc\n" held */
    EXPECT_LINE(&f.lr, 16, "b\n");
    EXPECT_LINE(&f.lr, 16, "c\n");
    CHECK_INT(line_reader_pending(&f.lr), ==, 0);
    EXPECT_EOF(&f.lr);
    EXPECT_EOF(&f.lr);
    teardown(&f);
}

static void test_empty_lines(void)
{
    struct fixture f;

    setup(&f, 0);
    send_str(f.sv[1], "\n\r\n\n");
    hang_up(&f);
    EXPECT_LINE(&f.lr, 2, "\n");                        /* the smallest cap */
    EXPECT_LINE(&f.lr, 2, "\n");
    EXPECT_LINE(&f.lr, 2, "\n");
    EXPECT_EOF(&f.lr);
    teardown(&f);
}

/* Non-blocking, so each write below is exactly what one read() sees. */
static void test_line_split_across_reads(void)
{
    struct fixture f;

    setup(&f, 1);
    EXPECT_FAIL(&f.lr, 16, EAGAIN);
    send_str(f.sv[1], "hel");
    EXPECT_FAIL(&f.lr, 16, EAGAIN);
    CHECK_INT(line_reader_pending(&f.lr), ==, 3);       /* partial line kept */
    send_str(f.sv[1], "lo wor");
    EXPECT_FAIL(&f.lr, 16, EAGAIN);
    send_str(f.sv[1], "ld\nnext");
    EXPECT_LINE(&f.lr, 16, "hello world\n");
    EXPECT_FAIL(&f.lr, 16, EAGAIN);
    CHECK_INT(line_reader_pending(&f.lr), ==, 4);
    hang_up(&f);
    EXPECT_LINE(&f.lr, 16, "next");                    /* last line, no newline */
    EXPECT_EOF(&f.lr);
    teardown(&f);
}

static void test_cr_and_lf_in_different_reads(void)
{
    struct fixture f;

    setup(&f, 1);
    send_str(f.sv[1], "abc\r");
    EXPECT_FAIL(&f.lr, 16, EAGAIN);
    send_str(f.sv[1], "\ndef\r\n");
    EXPECT_LINE(&f.lr, 16, "abc\n");
    EXPECT_LINE(&f.lr, 16, "def\n");
    /* A '\r' that fills the line up to the limit is still waiting for its '\n'. */
    send_str(f.sv[1], "123456\r");
    EXPECT_FAIL(&f.lr, 8, EAGAIN);
    send_str(f.sv[1], "\n");
    EXPECT_LINE(&f.lr, 8, "123456\n");
    teardown(&f);
}

/* Blocking, with the writer sending one byte at a time. */
static void test_byte_by_byte_writer(void)
{
    struct fixture f;
    static const char text[] = "x\r\ny\r\n\r\nlast\r";

    setup(&f, 0);
    struct dribble d = { f.sv[1], text, strlen(text), 1, 1000, 1 };
    pthread_t t = start_thread(dribble_thread, &d);
    EXPECT_LINE(&f.lr, 16, "x\n");
    EXPECT_LINE(&f.lr, 16, "y\n");
    EXPECT_LINE(&f.lr, 16, "\n");
    EXPECT_LINE(&f.lr, 16, "last\r");                  /* lone '\r' at EOF is data */
    EXPECT_EOF(&f.lr);
    join_thread(t);
    f.sv[1] = -1;
    teardown(&f);
}

static void test_lone_cr_is_data(void)
{
    struct fixture f;

    setup(&f, 0);
    send_str(f.sv[1], "a\rb\n\r\r\n\r");
    hang_up(&f);
    EXPECT_LINE(&f.lr, 16, "a\rb\n");
    EXPECT_LINE(&f.lr, 16, "\r\n");                    /* "\r" + "\r\n" */
    EXPECT_LINE(&f.lr, 16, "\r");
    EXPECT_EOF(&f.lr);
    teardown(&f);
}

/* cap 8: at most 6 bytes of content ("123456\n" + NUL fills all 8). */
static void test_overlong_at_cap_boundary(void)
{
    struct fixture f;

    setup(&f, 0);
    send_str(f.sv[1], "123456\n"            /* cap-2 chars + '\n': fits exactly */
                      "1234567\n"           /* cap-1 chars + '\n': too long */
                      "ok\n"
                      "123456\r\n"          /* CRLF does not count against the limit */
                      "1234567\r\n"
                      "abcdefghijklmnopqrstuvwxyz\n"
                      "last\n"
                      "1234567");           /* cap-1 chars then EOF: too long too */
    hang_up(&f);
    EXPECT_LINE(&f.lr, 8, "123456\n");
    EXPECT_FAIL(&f.lr, 8, EMSGSIZE);
    EXPECT_LINE(&f.lr, 8, "ok\n");
    EXPECT_LINE(&f.lr, 8, "123456\n");
    EXPECT_FAIL(&f.lr, 8, EMSGSIZE);
    EXPECT_FAIL(&f.lr, 8, EMSGSIZE);
    EXPECT_LINE(&f.lr, 8, "last\n");
    EXPECT_FAIL(&f.lr, 8, EMSGSIZE);
    EXPECT_EOF(&f.lr);
    teardown(&f);
}

static void test_last_line_at_cap_boundary(void)
{
    struct fixture f;

    setup(&f, 0);
    send_str(f.sv[1], "123456");              /* cap-2 chars then EOF: fits */
    hang_up(&f);
    EXPECT_LINE(&f.lr, 8, "123456");
    EXPECT_EOF(&f.lr);
    teardown(&f);
}

/* The overlong line arrives in several reads: it is dropped through its '\n'. */
static void test_overlong_across_reads(void)
{
    struct fixture f;

    setup(&f, 1);
    send_str(f.sv[1], "123456");
    EXPECT_FAIL(&f.lr, 8, EAGAIN);            /* may still be a 6-byte line */
    send_str(f.sv[1], "7");
    EXPECT_FAIL(&f.lr, 8, EMSGSIZE);          /* now it cannot be */
    CHECK_INT(line_reader_pending(&f.lr), ==, 0);
    send_str(f.sv[1], "xxxxxxxxxxxxxxxxxxxx");
    EXPECT_FAIL(&f.lr, 8, EAGAIN);            /* still skipping that line */
    CHECK_INT(line_reader_pending(&f.lr), ==, 0);
    send_str(f.sv[1], "yy\r\nzz\n");
    EXPECT_LINE(&f.lr, 8, "zz\n");
    EXPECT_FAIL(&f.lr, 8, EAGAIN);
    hang_up(&f);
    EXPECT_EOF(&f.lr);
    teardown(&f);
}

/* Blocking: an overlong line much longer than the reader's buffer. */
static void test_huge_line_then_more(void)
{
    struct fixture f;
    char *text = repeat('h', 100000, "\nafter\n");

    setup(&f, 0);
    struct dribble d = { f.sv[1], text, strlen(text), 4000, 0, 1 };
    pthread_t t = start_thread(dribble_thread, &d);
    EXPECT_FAIL(&f.lr, 64, EMSGSIZE);
    EXPECT_LINE(&f.lr, 64, "after\n");
    EXPECT_EOF(&f.lr);
    join_thread(t);
    f.sv[1] = -1;
    teardown(&f);
    free(text);
}

/* With a large cap the reader's own buffer is the limit: 8190 content bytes. */
static void test_reader_buffer_limit(void)
{
    enum { CAP = 3 * LINE_READER_BUFSIZE, MAX = LINE_READER_BUFSIZE - 2 };
    struct fixture f;
    char *fits = repeat('a', MAX, "\n");
    char *fits_crlf = repeat('b', MAX, "\r\n");
    char *too_long = repeat('c', MAX + 1, "\n");
    char *at_eof = repeat('d', MAX, "");

    setup(&f, 0);
    /* "ab\n" first, so the long lines start mid-buffer and must be moved. */
    send_str(f.sv[1], "ab\n");
    const char *parts[] = { fits, fits_crlf, too_long, "next\n", at_eof };
    char *all = malloc(5 * LINE_READER_BUFSIZE);
    if (all == NULL)
        DIE("malloc");
    all[0] = '\0';
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        strcat(all, parts[i]);
    struct dribble d = { f.sv[1], all, strlen(all), 1000, 0, 1 };
    pthread_t t = start_thread(dribble_thread, &d);

    EXPECT_LINE(&f.lr, CAP, "ab\n");
    EXPECT_LINE(&f.lr, CAP, fits);
    fits_crlf[MAX] = '\n';
    fits_crlf[MAX + 1] = '\0';
    EXPECT_LINE(&f.lr, CAP, fits_crlf);
    EXPECT_FAIL(&f.lr, CAP, EMSGSIZE);
    EXPECT_LINE(&f.lr, CAP, "next\n");
    EXPECT_LINE(&f.lr, CAP, at_eof);
    EXPECT_EOF(&f.lr);
    join_thread(t);
    f.sv[1] = -1;
    teardown(&f);
    free(fits);
    free(fits_crlf);
    free(too_long);
    free(at_eof);
    free(all);
}

/* Many lines of random lengths and terminators, cut into pieces of every size. */
static void stress(size_t piece, int lines)
{
    struct fixture f;
    size_t cap = 4096, len = 0;
    char *text = malloc((size_t)lines * 302 + 1);
    unsigned seed = 12345;

    if (text == NULL)
        DIE("malloc");
    for (int i = 0; i < lines; i++) {
        seed = seed * 1103515245 + 12345;
        size_t n = (seed >> 16) % 100;
        for (size_t j = 0; j < n; j++)
            text[len++] = (char)('a' + (i + j) % 26);
        if ((seed >> 8) & 1)
            text[len++] = '\r';
        text[len++] = '\n';
    }
    setup(&f, 0);
    struct dribble d = { f.sv[1], text, len, piece, 0, 1 };
    pthread_t t = start_thread(dribble_thread, &d);

    char *line = malloc(cap);
    size_t pos = 0;
    int got = 0, bad = 0;
    ssize_t r;
    if (line == NULL)
        DIE("malloc");
    while ((r = read_line(&f.lr, line, cap)) > 0) {
        /* Compare with the next line of text, CRLF folded to LF. */
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - (text + pos)) : 0;
        size_t content = n > 0 && text[pos + n - 1] == '\r' ? n - 1 : n;
        if (nl == NULL || (size_t)r != content + 1 || memcmp(line, text + pos, content) != 0 ||
            line[content] != '\n')
            bad++;
        pos += n + 1;
        got++;
    }
    CHECK_INT(r, ==, 0);
    CHECK_INT(got, ==, lines);
    CHECK_INT(bad, ==, 0);
    join_thread(t);
    f.sv[1] = -1;
    teardown(&f);
    free(line);
    free(text);
}

static void test_random_pieces(void)
{
    stress(1, 300);
    stress(7, 2000);
    stress(4096, 2000);
}

/* Interrupts the main thread once it sleeps in read(), then sends a line. */
struct interrupt_then_send {
    pthread_t target;
    pid_t tid;
    int fd;
    int was_blocked;
};

static void *interrupt_then_send(void *arg)
{
    struct interrupt_then_send *it = arg;

    it->was_blocked = wait_blocked_in(it->tid, SYS_read);
    pthread_kill(it->target, SIGUSR1);
    send_str(it->fd, "hi\n");
    return NULL;
}

static void test_eintr_is_retried(void)
{
    struct fixture f;

    setup(&f, 0);
    struct interrupt_then_send it = { pthread_self(), gettid(), f.sv[1], 0 };
    sig_atomic_t before = signals_caught;
    pthread_t t = start_thread(interrupt_then_send, &it);
    EXPECT_LINE(&f.lr, 16, "hi\n");
    join_thread(t);
    CHECK(it.was_blocked);
    CHECK_INT(signals_caught - before, ==, 1);
    teardown(&f);
}

static void test_errors(void)
{
    struct fixture f;
    struct line_reader bad;

    setup(&f, 0);
    send_str(f.sv[1], "x\n");
    EXPECT_FAIL(&f.lr, 1, EINVAL);
    EXPECT_LINE(&f.lr, 3, "x\n");                       /* nothing was consumed */
    teardown(&f);

    line_reader_init(&bad, -1);
    EXPECT_FAIL(&bad, 16, EBADF);
}

int main(void)
{
    watchdog_start(5);
    install_interrupting_handler();

    RUN(test_pipelined_lines);
    RUN(test_empty_lines);
    RUN(test_line_split_across_reads);
    RUN(test_cr_and_lf_in_different_reads);
    RUN(test_byte_by_byte_writer);
    RUN(test_lone_cr_is_data);
    RUN(test_overlong_at_cap_boundary);
    RUN(test_last_line_at_cap_boundary);
    RUN(test_overlong_across_reads);
    RUN(test_huge_line_then_more);
    RUN(test_reader_buffer_limit);
    RUN(test_random_pieces);
    RUN(test_eintr_is_retried);
    RUN(test_errors);
    return check_exit_status();
}
