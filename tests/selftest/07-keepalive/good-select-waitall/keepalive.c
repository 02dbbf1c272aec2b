/*
 * Self-test case: a correct keep-alive client written differently -- a table of
 * options, recv() and write(1) instead of stdio for the copy.
 */
#include <netinet/tcp.h>

#include "common.h"

int main(int argc, char **argv)
{
    if (argc != 6)
        fatal(0, "usage: %s HOST PORT IDLE_S INTERVAL_S COUNT", argv[0]);
    int fd = tcp_connect_or_die(argv[1], parse_port_or_die(argv[2]));
    struct { int level, name, value; const char *label; } opts[] = {
        { SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE" },
        { IPPROTO_TCP, TCP_KEEPIDLE, atoi(argv[3]), "TCP_KEEPIDLE" },
        { IPPROTO_TCP, TCP_KEEPINTVL, atoi(argv[4]), "TCP_KEEPINTVL" },
        { IPPROTO_TCP, TCP_KEEPCNT, atoi(argv[5]), "TCP_KEEPCNT" },
    };
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        if (setsockopt(fd, opts[i].level, opts[i].name, &opts[i].value, sizeof(int)) < 0)
            fatal(errno, "setsockopt %s", opts[i].label);
    printf("keepalive on: idle %s s, interval %s s, count %s\n", argv[3], argv[4], argv[5]);
    char buf[512];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), 0)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fatal(errno, "read");
        if (writen(STDOUT_FILENO, buf, (size_t)n) < 0)
            fatal(errno, "write");
    }
    puts("server closed");
    return 0;
}
