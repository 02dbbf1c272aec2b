/*
 * Self-test, a CORRECT alternative: recv(MSG_WAITALL) instead of a read loop, the
 * header parsed byte by byte instead of ntohl, the echo corked with MSG_MORE instead
 * of writev, one connection per loop iteration through a helper returning a verdict.
 */
#include "common.h"

#include <ctype.h>

#include <netinet/tcp.h>
#include <signal.h>

/* 1 = got all n bytes, 0 = EOF first (clean or not), -1 = error. */
static int recv_all(int fd, unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t r = recv(fd, p, n, MSG_WAITALL);    /* may still return short: signals */
        if (r == 0)
            return 0;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 1;
}

static int send_all(int fd, const unsigned char *p, size_t n, int flags)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, flags);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void handle(int conn, unsigned char *buf, unsigned long cap)
{
    for (;;) {
        unsigned char h[4];
        int got = recv_all(conn, h, sizeof h);
        if (got <= 0)
            return;
        unsigned long len = (unsigned long)h[0] << 24 | (unsigned long)h[1] << 16 |
                            (unsigned long)h[2] << 8 | h[3];
        if (len > cap) {
            printf("frame too long: %lu bytes (max %lu)\n", len, cap);
            return;
        }
        if (len > 0 && recv_all(conn, buf, len) <= 0)
            return;
        fwrite("received ", 1, 9, stdout);
        printf("%lu bytes: ", len);
        fwrite(buf, 1, len, stdout);
        putchar('\n');
        /* MSG_MORE holds the header until the payload joins it: one segment */
        if (send_all(conn, h, 4, len > 0 ? MSG_MORE : 0) < 0 ||
            send_all(conn, buf, len, 0) < 0)
            return;
    }
}

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s PORT MAXLEN", argv[0]);
    int port = atoi(argv[1]);
    char *end;
    unsigned long cap = strtoul(argv[2], &end, 10);
    if (!isdigit((unsigned char)argv[2][0]) || *end != '\0' || cap == 0 || cap > (1u << 20))
        fatal(0, "invalid MAXLEN '%s'", argv[2]);
    signal(SIGPIPE, SIG_IGN);
    unsigned char *buf = calloc(cap, 1);
    if (!buf)
        fatal(errno, "calloc");
    int lfd = tcp_listen_or_die("0.0.0.0", (uint16_t)port, 8);
    printf("listening on %d\n", local_port(lfd));
    for (;;) {
        int c = accept(lfd, NULL, NULL);
        if (c < 0)
            continue;
        int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        handle(c, buf, cap);
        close(c);
        puts("connection closed");
    }
}
