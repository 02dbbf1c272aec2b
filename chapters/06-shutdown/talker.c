/*
 * talker HOST PORT - one request, one reply: send each line of standard input, wait
 * for the server's one-line answer and print it.  See README.md, "Contract".
 */
#include "common.h"

#include <signal.h>

#define REPLY_MAX 1024

/* Wait for one reply line and print it.  Returns 0, or -1 if the server closed. */
static int print_reply(struct line_reader *lr)
{
    /* TODO: read_line() gives you exactly one line however the bytes arrive.  Its 0
     * means end-of-file: the server is gone.  A negative value is a real error. */
    TODO("read and print one reply line");
    return -1;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s HOST PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);

    /* TODO: decide what SIGPIPE does (README, "Writing to a peer that has gone: EPIPE and
     * SIGPIPE"). */

    int fd = tcp_connect_or_die(argv[1], port);
    struct line_reader lr;
    line_reader_init(&lr, fd);

    /* TODO: for each line of stdin: send it, then print_reply().  When the server has
     * gone, print `peer connection closed` and stop.  At the end: close, exit 0.
     * Think about which call tells you the server died: the write, or the read? */
    TODO("the request/reply loop");
    (void)print_reply;
    return 0;
}
