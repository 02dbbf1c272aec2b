/*
 * keepalive HOST PORT [IDLE_S INTERVAL_S COUNT] - let the kernel watch the connection.
 *
 * Turns on TCP keep-alive with the given timing, then just reads: whatever the server
 * sends goes to stdout.  If the server stops answering the kernel's probes, read()
 * fails with ETIMEDOUT and we report it.
 *
 * Reference solution for chapter 07.
 */
#include <netinet/tcp.h>

#include "common.h"

/* A whole number 1..max: the kernel refuses TCP_KEEPIDLE/TCP_KEEPINTVL above 32767 and
 * TCP_KEEPCNT above 127 (EINVAL). */
static int parse_option_or_die(const char *text, const char *what, long max)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < 1 || value > max)
        fatal(0, "invalid %s '%s'", what, text);
    return (int)value;
}

static void set_int_option(int fd, int level, int name, int value, const char *what)
{
    if (setsockopt(fd, level, name, &value, sizeof(value)) < 0)
        fatal(errno, "setsockopt %s", what);
}

/* Probe after idle_s quiet seconds, then every interval_s; give up after count misses. */
static void enable_keepalive(int fd, int idle_s, int interval_s, int count)
{
    set_int_option(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
    set_int_option(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle_s, "TCP_KEEPIDLE");
    set_int_option(fd, IPPROTO_TCP, TCP_KEEPINTVL, interval_s, "TCP_KEEPINTVL");
    set_int_option(fd, IPPROTO_TCP, TCP_KEEPCNT, count, "TCP_KEEPCNT");
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 6)
        fatal(0, "usage: %s HOST PORT [IDLE_S INTERVAL_S COUNT]", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);
    int idle_s = argc == 6 ? parse_option_or_die(argv[3], "IDLE_S", 32767) : 10;
    int interval_s = argc == 6 ? parse_option_or_die(argv[4], "INTERVAL_S", 32767) : 5;
    int count = argc == 6 ? parse_option_or_die(argv[5], "COUNT", 127) : 3;

    int fd = tcp_connect_or_die(argv[1], port);
    enable_keepalive(fd, idle_s, interval_s, count);
    printf("keepalive on: idle %d s, interval %d s, count %d\n", idle_s, interval_s, count);

    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fatal(errno, "read");       /* ETIMEDOUT: the probes went unanswered */
        }
        if (n == 0) {
            printf("server closed\n");
            return 0;
        }
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
            fatal(errno, "fwrite");
        fflush(stdout);
    }
}
