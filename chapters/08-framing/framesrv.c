/*
 * framesrv PORT MAXLEN - receive length-prefixed frames, print each one, echo it back.
 *
 * A frame is a 4-byte length in network byte order followed by that many bytes.
 * One connection at a time; see README.md, "Contract".
 *
 * Your part: read_exactly, recv_frame and send_frame.  Do not use lib's
 * read_frame/write_frame/readn here: writing them yourself is the exercise.
 */
#include "common.h"

#include <limits.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/uio.h>

#define MAXLEN_LIMIT (1u << 20)        /* the largest MAXLEN we accept: 1 MiB */

enum frame_result {
    FRAME_OK,           /* a whole frame is in buf */
    FRAME_CLOSED,       /* EOF: between frames, or inside one (truncated) */
    FRAME_TOO_LONG,     /* the header announced more than the buffer holds */
    FRAME_FAILED,       /* read() failed; errno says why */
};

/*
 * Read exactly n bytes, however the sender split them.  Returns n, or fewer if the
 * peer closed first (0 = closed before the first byte), or -1 on error.
 */
static ssize_t read_exactly(int fd, void *buf, size_t n)
{
    /* TODO: one read() returns whatever has arrived: 1 byte, or 3 frames' worth.
     * Loop until you have n bytes.  read() returning 0 means EOF: stop and return
     * what you have.  EINTR is not an error: just read again.  Note that asking
     * for n == 0 bytes must return 0 at once, and that is not an EOF. */
    (void)fd;
    (void)buf;
    (void)n;
    TODO("read_exactly");
}

/*
 * Receive one frame into buf (cap bytes) and store its length in *len.
 */
static enum frame_result recv_frame(int fd, char *buf, size_t cap, uint32_t *len)
{
    /* TODO: read the 4-byte header with read_exactly.  Fewer than 4 bytes means
     * the peer closed (FRAME_CLOSED; if it was 1-3 bytes, a warning on stderr is
     * a kindness).  The header is big-endian: convert it with ntohl().
     *
     * Before reading one byte of payload, compare the length with cap: a length
     * that does not fit is FRAME_TOO_LONG (set *len so the caller can print it).
     * Reading it anyway would overflow buf; waiting for it could block forever.
     *
     * Then read exactly *len payload bytes.  Fewer means the frame was cut short
     * by EOF: that is FRAME_CLOSED, not a message.  A payload of exactly cap bytes
     * fills buf completely -- there is no room for a '\0' after it. */
    (void)fd;
    (void)buf;
    (void)cap;
    (void)len;
    TODO("recv_frame");
}

/* Send header and payload with one writev, finishing the job if it comes up short. */
static int send_frame(int fd, const char *payload, uint32_t len)
{
    /* TODO: the header is htonl(len).  Two write() calls would send the header and
     * the payload as two TCP segments; writev() hands both buffers to the kernel in
     * one call, so a small frame leaves as one segment.  writev can write less than
     * everything (or fail with EINTR): advance past what was written and call it
     * again until nothing is left.  Return 0, or -1 with errno set. */
    (void)fd;
    (void)payload;
    (void)len;
    TODO("send_frame");
}

/* Serve one connection until it ends. */
static void serve(int conn, char *buf, size_t cap)
{
    for (;;) {
        uint32_t len = 0;
        switch (recv_frame(conn, buf, cap, &len)) {
        case FRAME_OK:
            /* "%.*s" prints exactly len bytes: buf is not a C string. */
            /* the payload as it is, NUL bytes included: "%.*s" would stop at the first */
            printf("received %u bytes: ", len);
            fwrite(buf, 1, len, stdout);
            putchar('\n');
            if (send_frame(conn, buf, len) < 0) {
                warning(errno, "writev");
                return;
            }
            break;
        case FRAME_TOO_LONG:
            printf("frame too long: %u bytes (max %zu)\n", len, cap);
            return;
        case FRAME_CLOSED:
            return;
        case FRAME_FAILED:
            warning(errno, "read");
            return;
        }
    }
}

static size_t parse_maxlen_or_die(const char *text)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    /* digits only: strtoul alone would take " 12", "+12" and "-1" */
    if (text[strspn(text, "0123456789")] != '\0' || errno != 0 || end == text || v == 0 || v > MAXLEN_LIMIT)
        fatal(0, "invalid MAXLEN '%s' (1..%u)", text, MAXLEN_LIMIT);
    return (size_t)v;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s PORT MAXLEN", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);
    size_t cap = parse_maxlen_or_die(argv[2]);

    /* A peer that goes away while we echo must cost one connection, not the server. */
    signal(SIGPIPE, SIG_IGN);

    char *buf = malloc(cap);            /* exactly MAXLEN bytes: not one more */
    if (buf == NULL)
        fatal(errno, "malloc");

    int listen_fd = tcp_listen_or_die(NULL, port, 16);
    printf("listening on %d\n", local_port(listen_fd));

    for (;;) {
        int conn = accept(listen_fd, NULL, NULL);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fatal(errno, "accept");
        }
        /* TODO (small): the echo is a small reply the peer waits for.  Turn Nagle's
         * algorithm off on conn (TCP_NODELAY, level IPPROTO_TCP) so the kernel never
         * holds it back waiting for an ACK.  A failure here is a warning, not fatal. */
        serve(conn, buf, cap);
        if (close(conn) < 0)
            warning(errno, "close");
        printf("connection closed\n");
    }
}
