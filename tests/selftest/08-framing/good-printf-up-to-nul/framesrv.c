/*
 * framesrv PORT MAXLEN - receive length-prefixed frames, print each one, echo it back.
 *
 * A frame is a 4-byte length in network byte order followed by that many bytes.
 * One connection at a time; see README.md, "Contract".
 *
 * Reference solution for chapter 08.
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
    char *p = buf;
    size_t got = 0;

    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/*
 * Receive one frame into buf (cap bytes).  The length is checked against cap
 * before a single payload byte is read, so a hostile length can neither make us
 * wait for bytes that will never come nor write past the buffer.
 */
static enum frame_result recv_frame(int fd, char *buf, size_t cap, uint32_t *len)
{
    uint32_t header;
    ssize_t r = read_exactly(fd, &header, sizeof(header));
    if (r < 0)
        return FRAME_FAILED;
    if ((size_t)r < sizeof(header)) {
        if (r > 0)
            warning(0, "peer closed inside a frame header (%zd of 4 bytes)", r);
        return FRAME_CLOSED;
    }

    *len = ntohl(header);
    if (*len > cap)
        return FRAME_TOO_LONG;

    r = read_exactly(fd, buf, *len);
    if (r < 0)
        return FRAME_FAILED;
    if ((size_t)r < *len) {
        warning(0, "peer closed inside a frame (%zd of %u bytes)", r, *len);
        return FRAME_CLOSED;
    }
    return FRAME_OK;
}

/* Send header and payload with one writev, finishing the job if it comes up short. */
static int send_frame(int fd, const char *payload, uint32_t len)
{
    uint32_t header = htonl(len);
    struct iovec iov[2] = {
        { .iov_base = &header, .iov_len = sizeof(header) },
        { .iov_base = (void *)payload, .iov_len = len },
    };
    struct iovec *v = iov;
    int count = 2;

    while (count > 0) {
        ssize_t w = writev(fd, v, count);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        size_t done = (size_t)w;
        while (count > 0 && done >= v->iov_len) {
            done -= v->iov_len;
            v++;
            count--;
        }
        if (count > 0) {
            v->iov_base = (char *)v->iov_base + done;
            v->iov_len -= done;
        }
    }
    return 0;
}

/* Serve one connection until it ends. */
static void serve(int conn, char *buf, size_t cap)
{
    for (;;) {
        uint32_t len = 0;
        switch (recv_frame(conn, buf, cap, &len)) {
        case FRAME_OK:
            printf("received %u bytes: %.*s\n", len, (int)len, buf);     /* up to a NUL: allowed */
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

    char *buf = malloc(cap);
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
        /* Replies are small and the peer waits for each: don't let Nagle hold them. */
        int on = 1;
        if (setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) < 0)
            warning(errno, "setsockopt TCP_NODELAY");
        serve(conn, buf, cap);
        if (close(conn) < 0)
            warning(errno, "close");
        printf("connection closed\n");
    }
}
