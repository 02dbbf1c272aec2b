/*
 * Self-test case: a correct client written differently -- tcp_connect_or_die,
 * send() with MSG_NOSIGNAL in 4096-byte pieces ignoring CHUNK's exact size
 * (smaller pieces are allowed), recv() with a tiny buffer, output through dprintf,
 * arguments checked by hand.
 */
#include "common.h"

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5)
        fatal(0, "usage: %s HOST PORT COUNT [CHUNK]", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);
    char *end;
    errno = 0;
    unsigned long count = strtoul(argv[3], &end, 10);
    if (argv[3][0] < '0' || argv[3][0] > '9' || *end != '\0' || errno != 0 || count > (1UL << 30))
        fatal(0, "invalid count '%s'", argv[3]);
    if (argc == 5) {
        unsigned long chunk = strtoul(argv[4], &end, 10);
        if (argv[4][0] < '0' || argv[4][0] > '9' || *end != '\0' || chunk == 0 || chunk > (1UL << 30))
            fatal(0, "invalid chunk '%s'", argv[4]);
    }
    struct sockaddr_storage check;
    if (fill_sockaddr(&check, argv[1], port) < 0)
        fatal(0, "invalid address '%s'", argv[1]);

    int fd = tcp_connect_or_die(argv[1], port);
    struct sockaddr_storage me;
    socklen_t len = sizeof(me);
    if (getsockname(fd, (struct sockaddr *)&me, &len) < 0)
        fatal(errno, "getsockname");
    char text[ADDR_STRLEN];
    dprintf(STDOUT_FILENO, "connected from %s\n", format_addr((struct sockaddr *)&me, len, text, sizeof(text)));

    char piece[4096];
    unsigned long done = 0;
    while (done < count) {
        size_t n = count - done < sizeof(piece) ? count - done : sizeof(piece);
        for (size_t i = 0; i < n; i++)
            piece[i] = (char)('a' + (done + i) % 26);
        size_t off = 0;
        while (off < n) {
            ssize_t w = send(fd, piece + off, n - off, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                fatal(errno, "send");
            off += (size_t)w;
        }
        done += n;
    }
    dprintf(STDOUT_FILENO, "sent %lu bytes\n", done);
    if (shutdown(fd, SHUT_WR) < 0)
        fatal(errno, "shutdown");

    char small[7];
    char last = '\n';
    ssize_t r;
    while ((r = recv(fd, small, sizeof(small), 0)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            fatal(errno, "recv");
        if (write(STDOUT_FILENO, small, (size_t)r) != r)
            fatal(errno, "write stdout");
        if (r > 0)
            last = small[r - 1];
    }
    dprintf(STDOUT_FILENO, "%sserver closed\n", last == '\n' ? "" : "\n");
    return 0;
}
