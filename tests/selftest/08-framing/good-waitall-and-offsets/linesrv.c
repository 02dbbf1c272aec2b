/*
 * Self-test, a CORRECT alternative: a buffer with start/end offsets that is compacted
 * only when full, the line scanned byte by byte, the echo written in place from the buffer.
 */
#include "common.h"

#include <ctype.h>

#include <signal.h>

struct conn {
    int fd;
    size_t start, end, size;
    char *bytes;
};

/* Returns the line length, -1 EOF, -2 too long, -3 error. The line starts at c->bytes + *at. */
static long get_line(struct conn *c, size_t maxline, size_t *at)
{
    size_t scanned = c->start;
    for (;;) {
        for (; scanned < c->end; scanned++) {
            if (c->bytes[scanned] == '\n') {
                size_t n = scanned - c->start;
                if (n > 0 && c->bytes[scanned - 1] == '\r')
                    n--;
                if (n > maxline)
                    return -2;
                *at = c->start;
                c->start = scanned + 1;
                return (long)n;
            }
        }
        if (c->end - c->start >= maxline + 2)
            return -2;
        if (c->end == c->size) {               /* room only at the front: compact */
            memmove(c->bytes, c->bytes + c->start, c->end - c->start);
            scanned -= c->start;
            c->end -= c->start;
            c->start = 0;
        }
        ssize_t r = read(c->fd, c->bytes + c->end, c->size - c->end);
        if (r == 0)
            return -1;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -3;
        }
        c->end += (size_t)r;
    }
}

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s PORT MAXLINE", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);
    char *end;
    size_t maxline = strtoul(argv[2], &end, 10);
    if (!isdigit((unsigned char)argv[2][0]) || *end != '\0' || maxline == 0 || maxline > (1u << 20))
        fatal(0, "invalid MAXLINE '%s'", argv[2]);
    signal(SIGPIPE, SIG_IGN);
    struct conn c = { .size = 2 * (maxline + 2) };
    c.bytes = malloc(c.size);
    if (!c.bytes)
        fatal(errno, "malloc");
    int lfd = tcp_listen_or_die(NULL, port, 8);
    printf("listening on %d\n", local_port(lfd));
    for (;;) {
        c.fd = accept(lfd, NULL, NULL);
        if (c.fd < 0)
            continue;
        c.start = c.end = 0;
        for (;;) {
            size_t at;
            long n = get_line(&c, maxline, &at);
            if (n == -2)
                printf("line too long (max %zu)\n", maxline);
            if (n < 0)
                break;
            printf("line: %.*s\n", (int)n, c.bytes + at);
            c.bytes[at + n] = '\n';                /* over the terminator: the echo in place */
            if (writen(c.fd, c.bytes + at, (size_t)n + 1) < 0)
                break;
        }
        close(c.fd);
        printf("connection closed\n");
    }
}
