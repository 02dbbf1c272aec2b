/*
 * Self-test case: a correct server written differently -- its own socket/bind/listen,
 * accept4 with SOCK_CLOEXEC, getpeername, recv with a 7-byte buffer, dprintf replies,
 * MSG_NOSIGNAL instead of ignoring SIGPIPE, sleep() instead of pause().
 */
#include "common.h"

#include <limits.h>

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4 || (argc == 4 && strcmp(argv[3], "no-accept") != 0))
        fatal(0, "usage: %s PORT [BACKLOG [no-accept]]", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);
    int backlog = 16;
    if (argc >= 3) {
        char *end;
        long value = strtol(argv[2], &end, 10);
        if (argv[2][0] < '0' || argv[2][0] > '9' || *end != '\0' || value > INT_MAX)
            fatal(0, "invalid backlog '%s'", argv[2]);
        backlog = (int)value;
    }

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        fatal(errno, "bind");
    if (listen(fd, backlog) < 0)
        fatal(errno, "listen");
    socklen_t len = sizeof(addr);
    getsockname(fd, (struct sockaddr *)&addr, &len);
    printf("listening on 0.0.0.0:%u backlog %d\n", ntohs(addr.sin_port), backlog);

    if (argc == 4)
        for (;;)
            sleep(1000);

    for (;;) {
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        struct sockaddr_in peer;
        socklen_t plen = sizeof(peer);
        char ip[INET_ADDRSTRLEN] = "?";
        if (getpeername(c, (struct sockaddr *)&peer, &plen) == 0)
            inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
        unsigned long total = 0;
        char small[7];
        ssize_t r;
        while ((r = recv(c, small, sizeof(small), 0)) != 0) {
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                break;
            total += (unsigned long)r;
        }
        if (r == 0) {
            printf("client %s:%u sent %lu bytes\n", ip, ntohs(peer.sin_port), total);
            char reply[64];
            int n = snprintf(reply, sizeof(reply), "received %lu bytes\n", total);
            if (send(c, reply, (size_t)n, MSG_NOSIGNAL) < 0)
                warning(errno, "send");
        } else {
            warning(errno, "recv");
        }
        close(c);
    }
}
