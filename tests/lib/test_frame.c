/*
 * test_frame.c - write_frame/read_frame: frames cut anywhere, frames glued
 * together, empty and oversize frames, and every kind of EOF.
 */
#include "testutil.h"

/* Append one encoded frame to out; returns the new length. */
static size_t encode(unsigned char *out, size_t at, const char *payload, uint32_t len)
{
    uint32_t be = htonl(len);
    memcpy(out + at, &be, 4);
    memcpy(out + at + 4, payload, len);
    return at + 4 + len;
}

static void test_roundtrip(void)
{
    int sv[2];
    char buf[16];

    stream_pair(sv);
    CHECK_INT(write_frame(sv[1], "hello", 5), ==, 0);
    CHECK_INT(read_frame(sv[0], buf, sizeof(buf)), ==, 5);
    CHECK_MEM(buf, "hello", 5);
    close_pair(sv);
}

/* The bytes on the wire are exactly [00 00 00 03]["abc"]. */
static void test_wire_format(void)
{
    int sv[2];
    unsigned char buf[16];

    stream_pair(sv);
    CHECK_INT(write_frame(sv[1], "abc", 3), ==, 0);
    CHECK_INT(readn(sv[0], buf, 7), ==, 7);
    CHECK_MEM(buf, "\0\0\0\3abc", 7);
    close_pair(sv);
}

static void test_zero_length_frame(void)
{
    int sv[2];
    char buf[4];

    stream_pair(sv);
    CHECK_INT(write_frame(sv[1], NULL, 0), ==, 0);
    CHECK_INT(write_frame(sv[1], "x", 1), ==, 0);
    CHECK_INT(read_frame(sv[0], buf, sizeof(buf)), ==, 0);
    CHECK_INT(read_frame(sv[0], buf, sizeof(buf)), ==, 1);   /* still in step */
    CHECK(buf[0] == 'x');
    close_pair(sv);
}

/* Several frames arrive in one segment: each read_frame takes exactly one. */
static void test_coalesced_frames(void)
{
    int sv[2];
    unsigned char wire[64];
    char buf[16];
    size_t n = 0;

    n = encode(wire, n, "one", 3);
    n = encode(wire, n, "", 0);
    n = encode(wire, n, "three", 5);
    stream_pair(sv);
    send_all(sv[1], wire, n);
    close(sv[1]);
    sv[1] = -1;
    CHECK_INT(read_frame(sv[0], buf, sizeof(buf)), ==, 3);
    CHECK_MEM(buf, "one", 3);
    CHECK_INT(read_frame(sv[0], buf, sizeof(buf)), ==, 0);
    CHECK_INT(read_frame(sv[0], buf, sizeof(buf)), ==, 5);
    CHECK_MEM(buf, "three", 5);
    CHECK_INT(read_frame(sv[0], buf, sizeof(buf)), ==, FRAME_EOF);
    close_pair(sv);
}

/* Send two frames in pieces of `piece` bytes, pausing between pieces. */
static void split_frames(size_t piece)
{
    int sv[2];
    unsigned char wire[64];
    char buf[16];
    size_t n = 0;

    n = encode(wire, n, "abcd", 4);
    n = encode(wire, n, "hello world", 11);
    stream_pair(sv);
    struct dribble d = { sv[1], wire, n, piece, 2000, 1 };
    pthread_t t = start_thread(dribble_thread, &d);
    CHECK_INT(read_frame(sv[0], buf, sizeof(buf)), ==, 4);
    CHECK_MEM(buf, "abcd", 4);
    CHECK_INT(read_frame(sv[0], buf, sizeof(buf)), ==, 11);
    CHECK_MEM(buf, "hello world", 11);
    CHECK_INT(read_frame(sv[0], buf, sizeof(buf)), ==, FRAME_EOF);
    join_thread(t);
    sv[1] = -1;                 /* closed by the thread */
    close_pair(sv);
}

static void test_split_byte_by_byte(void)
{
    split_frames(1);
}

/* Pieces of 4: the first frame arrives as [header] then [payload]. */
static void test_split_at_header_boundary(void)
{
    split_frames(4);
}

static void test_split_inside_header(void)
{
    split_frames(2);
}

/* Too long: refused at once without reading (or waiting for) the payload. */
static void test_oversize_length(void)
{
    int sv[2];
    unsigned char wire[16];
    char buf[10];
    char rest[16];

    stream_pair(sv);
    encode(wire, 0, "xyz", 3);
    uint32_t be = htonl(1000);                  /* announce 1000, send only 3 */
    memcpy(wire, &be, 4);
    send_all(sv[1], wire, 7);                   /* and keep the connection open */
    /* at once: a read_frame that waited for the payload would time out (EAGAIN) */
    CHECK_ERRNO(read_frame(sv[0], buf, sizeof(buf)), EMSGSIZE);
    /* None of the payload was consumed. */
    CHECK_INT(recv(sv[0], rest, sizeof(rest), MSG_DONTWAIT), ==, 3);
    CHECK_MEM(rest, "xyz", 3);

    memset(wire, 0xff, 4);                      /* 4294967295 */
    send_all(sv[1], wire, 4);
    CHECK_ERRNO(read_frame(sv[0], buf, sizeof(buf)), EMSGSIZE);
    close_pair(sv);
}

static void test_length_at_cap_boundary(void)
{
    int sv[2];
    char *buf = malloc(8);      /* exact size: ASan sees any write past it */

    if (buf == NULL)
        DIE("malloc");
    stream_pair(sv);
    CHECK_INT(write_frame(sv[1], "12345678", 8), ==, 0);
    CHECK_INT(read_frame(sv[0], buf, 8), ==, 8);
    CHECK_MEM(buf, "12345678", 8);
    CHECK_INT(write_frame(sv[1], "123456789", 9), ==, 0);
    CHECK_ERRNO(read_frame(sv[0], buf, 8), EMSGSIZE);
    close_pair(sv);
    free(buf);
}

/* Send raw bytes, close, and expect read_frame to fail with EPROTO. */
static void expect_truncated(const void *wire, size_t len)
{
    int sv[2];
    char buf[32];

    stream_pair(sv);
    send_all(sv[1], wire, len);
    close(sv[1]);
    sv[1] = -1;
    CHECK_ERRNO(read_frame(sv[0], buf, sizeof(buf)), EPROTO);
    close_pair(sv);
}

static void test_eof_mid_header(void)
{
    expect_truncated("\0", 1);
    expect_truncated("\0\0", 2);
    expect_truncated("\0\0\0", 3);
}

static void test_eof_mid_payload(void)
{
    expect_truncated("\0\0\0\12abcd", 8);       /* 10 announced, 4 sent */
    expect_truncated("\0\0\0\1", 4);            /* 1 announced, none sent */
}

static void test_clean_eof(void)
{
    int sv[2];
    char buf[8];

    stream_pair(sv);
    close(sv[1]);
    sv[1] = -1;
    CHECK_INT(read_frame(sv[0], buf, sizeof(buf)), ==, FRAME_EOF);
    CHECK_INT(read_frame(sv[0], buf, sizeof(buf)), ==, FRAME_EOF);
    close_pair(sv);
}

struct frame_reader {
    int fd;
    char *buf;
    size_t cap;
    ssize_t result;
};

static void *frame_reader_thread(void *arg)
{
    struct frame_reader *r = arg;
    r->result = read_frame(r->fd, r->buf, r->cap);
    return NULL;
}

/*
 * A 1 MiB frame through a 4 KiB send buffer while both ends keep being
 * interrupted: writev comes back short (or with EINTR) many times.
 */
static void test_large_frame_short_writes(void)
{
    enum { N = 1 << 20 };
    int sv[2];
    int small = 4096;
    char *data = malloc(N), *got = malloc(N);

    if (data == NULL || got == NULL)
        DIE("malloc");
    for (size_t i = 0; i < N; i++)
        data[i] = (char)(i * 13 + i / 509);
    stream_pair(sv);
    if (setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)) < 0)
        DIE("setsockopt SO_SNDBUF");

    struct frame_reader r = { sv[0], got, N, -3 };
    pthread_t reader = start_thread(frame_reader_thread, &r);
    struct bombard b = { .target = { pthread_self(), reader }, .count = 2 };
    sig_atomic_t before = signals_caught;
    pthread_t signaller = start_thread(bombard_thread, &b);
    wait_for_signal(before);                    /* the bombardment has begun */

    CHECK_INT(write_frame(sv[1], data, N), ==, 0);
    join_thread(reader);
    atomic_store(&b.stop, 1);
    join_thread(signaller);
    CHECK_INT(r.result, ==, N);
    CHECK_MEM(got, data, N);
    CHECK(signals_caught - before > 0);
    close_pair(sv);
    free(data);
    free(got);
}

/*
 * The send buffer is already full: writev first fails with EINTR, later returns
 * a count that ends inside the payload; write_frame must send the rest, in order.
 */
static void test_write_frame_interrupted(void)
{
    enum { CAP = 1 << 20, N = 100000 };
    int sv[2];
    unsigned char *got = malloc(CAP);
    char *data = malloc(N);
    char *back = malloc(N);

    if (got == NULL || data == NULL || back == NULL)
        DIE("malloc");
    for (size_t i = 0; i < N; i++)
        data[i] = (char)(i * 13 + i / 509);
    stream_pair(sv);
    size_t filled = fill_send_buffer(sv[1]);
    if (filled + 4 + N > CAP)
        DIE("socket buffer larger than expected: %zu bytes", filled);

    struct squeeze s = { .fd = sv[0], .writer = pthread_self(), .writer_tid = gettid(),
                         .nr = SYS_writev, .first_drain = filled + 5000, .buf = got,
                         .expect = filled + 4 + N };
    sig_atomic_t before = signals_caught;
    pthread_t reader = start_thread(squeeze_thread, &s);
    CHECK_INT(write_frame(sv[1], data, N), ==, 0);
    join_thread(reader);
    CHECK(s.blocked[0] && s.blocked[1] && s.blocked[2]);
    CHECK_INT(signals_caught - before, ==, 2);
    CHECK_INT(s.got, ==, filled + 4 + N);
    if (s.got == filled + 4 + N) {
        /* Parse it back with read_frame, through a fresh pair. */
        int pv[2];
        stream_pair(pv);
        struct dribble d = { pv[1], got + filled, 4 + N, 4096, 0, 1 };
        pthread_t t = start_thread(dribble_thread, &d);
        CHECK_INT(read_frame(pv[0], back, N), ==, N);
        CHECK_MEM(back, data, N);
        join_thread(t);
        pv[1] = -1;
        close_pair(pv);
    }
    close_pair(sv);
    free(got);
    free(data);
    free(back);
}

static void test_errors(void)
{
    int sv[2];
    char buf[8];

    CHECK_ERRNO(read_frame(-1, buf, sizeof(buf)), EBADF);
    CHECK_ERRNO(write_frame(-1, "x", 1), EBADF);

    stream_pair(sv);
    CHECK_INT(make_nonblocking(sv[0]), ==, 0);
    CHECK_ERRNO(read_frame(sv[0], buf, sizeof(buf)), EAGAIN);
    close(sv[0]);
    sv[0] = -1;
    CHECK_ERRNO(write_frame(sv[1], "x", 1), EPIPE);     /* SIGPIPE is ignored */
    close_pair(sv);
}

int main(void)
{
    watchdog_start(5);
    signal(SIGPIPE, SIG_IGN);
    install_interrupting_handler();

    RUN(test_roundtrip);
    RUN(test_wire_format);
    RUN(test_zero_length_frame);
    RUN(test_coalesced_frames);
    RUN(test_split_byte_by_byte);
    RUN(test_split_at_header_boundary);
    RUN(test_split_inside_header);
    RUN(test_oversize_length);
    RUN(test_length_at_cap_boundary);
    RUN(test_eof_mid_header);
    RUN(test_eof_mid_payload);
    RUN(test_clean_eof);
    RUN(test_large_frame_short_writes);
    RUN(test_write_frame_interrupted);
    RUN(test_errors);
    return check_exit_status();
}
