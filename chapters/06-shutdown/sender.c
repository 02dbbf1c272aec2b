/*
 * sender HOST PORT - fire and forget: send each line of standard input to a collector,
 * one write per line, never reading anything back.  See README.md, "Contract".
 */
#include "common.h"

#include <signal.h>

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s HOST PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);

    /* TODO: a write to a collector that has gone must come back as an error you can
     * report, not as a signal that kills the program without a word. */
    TODO("choose what SIGPIPE does");

    int fd = tcp_connect_or_die(argv[1], port);

    /* TODO: send each line of stdin as it is.  Check every write: when one fails,
     * report it with fatal(errno, "write") (exit 1).  At the end of stdin close the
     * socket and exit 0. */
    (void)fd;
    return 0;
}
