/*
 * Self-test case: a correct keep-alive client written differently -- a table of
 * options, recv() and write(1) instead of stdio for the copy.
 */
#include <netinet/tcp.h>

#include "common.h"

/* A whole number 1..top, or the program ends naming the argument. */
static int bounded(const char *text, const char *label, long top)
{
    char *rest;
    errno = 0;
    long v = strtol(text, &rest, 10);
    if (rest == text || *rest != '\0' || errno == ERANGE || v < 1 || v > top)
        fatal(0, "invalid %s '%s'", label, text);
    return (int)v;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 6)
        fatal(0, "usage: %s HOST PORT [IDLE_S INTERVAL_S COUNT]", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);
    /* without timing arguments: 10 s, 5 s, 3 probes; the kernel caps 32767/32767/127 */
    int idle = argc == 6 ? bounded(argv[3], "IDLE_S", 32767) : 10;
    int every = argc == 6 ? bounded(argv[4], "INTERVAL_S", 32767) : 5;
    int probes = argc == 6 ? bounded(argv[5], "COUNT", 127) : 3;
    int fd = tcp_connect_or_die(argv[1], port);
    struct { int level, name, value; const char *label; } opts[] = {
        { SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE" },
        { IPPROTO_TCP, TCP_KEEPIDLE, idle, "TCP_KEEPIDLE" },
        { IPPROTO_TCP, TCP_KEEPINTVL, every, "TCP_KEEPINTVL" },
        { IPPROTO_TCP, TCP_KEEPCNT, probes, "TCP_KEEPCNT" },
    };
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        if (setsockopt(fd, opts[i].level, opts[i].name, &opts[i].value, sizeof(int)) < 0)
            fatal(errno, "setsockopt %s", opts[i].label);
    printf("keepalive on: idle %d s, interval %d s, count %d\n", idle, every, probes);
    fflush(stdout);
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
