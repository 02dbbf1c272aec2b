/*
 * keepalive HOST PORT [IDLE_S INTERVAL_S COUNT] - let the kernel watch the connection.
 * See README.md, "Contract".
 *
 * Turns on TCP keep-alive with the given timing, then just reads: whatever the server
 * sends goes to stdout.  If the server stops answering the kernel's probes, read()
 * fails and we report why.
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

/* Probe after idle_s quiet seconds, then every interval_s; give up after count misses. */
static void enable_keepalive(int fd, int idle_s, int interval_s, int count)
{
    /* TODO: four setsockopt() calls, each checked and reported by name on failure:
     * one at the socket level switches keep-alive on; three at the TCP level set the
     * idle time, the interval between probes, and the number of probes (all ints,
     * times in whole seconds).  Without the three, the system-wide defaults apply:
     * look at /proc/sys/net/ipv4/tcp_keepalive_* to see why you want your own. */
    (void)fd;
    (void)idle_s;
    (void)interval_s;
    (void)count;
    TODO("enable_keepalive");
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

    /* TODO: read until the end: copy what arrives to stdout; on EOF print
     * "server closed" and exit 0; on an error (EINTR aside) report it with
     * fatal(errno, "read") -- when the probes go unanswered that error is the
     * kernel's verdict on the connection. */
    TODO("the read loop");
}
