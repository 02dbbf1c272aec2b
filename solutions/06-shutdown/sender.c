/*
 * sender HOST PORT - fire and forget: send each line of standard input to a collector,
 * one write per line, and never read anything back.  When the collector has gone
 * away, a write fails sooner or later; we report it ("write: Broken pipe (32)" or
 * "write: Connection reset by peer (104)") and exit 1 -- rather than being killed
 * without a word by SIGPIPE.
 *
 * Reference solution for chapter 06.
 */
#include "common.h"

#include <signal.h>

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s HOST PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);

    /* Without this, a write that would fail with EPIPE kills us instead. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        fatal(errno, "signal");

    int fd = tcp_connect_or_die(argv[1], port);

    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (writen(fd, line, (size_t)n) < 0)
            fatal(errno, "write");
    }
    free(line);
    if (close(fd) < 0)
        fatal(errno, "close");
    return 0;
}
