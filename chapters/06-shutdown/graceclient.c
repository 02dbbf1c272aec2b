/*
 * graceclient HOST PORT - send standard input to a server line by line; when standard
 * input ends, half-close the connection and print the server's replies until the
 * server closes too.  A line "close" closes the socket instead.  See README.md,
 * "Contract".
 *
 * The structure is deliberately simple (no poll/select, that is lesson 09): send all
 * of stdin first, then read the replies.  Replies that arrive meanwhile wait in the
 * socket's receive buffer.
 */
#include "common.h"

#include <signal.h>

enum input_end { STDIN_ENDED, CLOSE_ASKED };

/* Send every line of stdin as it is (with its '\n'); stop at EOF or at "close". */
static enum input_end send_lines(int fd)
{
    /* TODO: read stdin line by line (getline() is fine).  A line "close" stops the
     * loop and is not sent: return CLOSE_ASKED.  Any other line goes to the server
     * as it is -- writen() sends all of it.  At the end of stdin return STDIN_ENDED. */
    TODO("send stdin's lines");
    return STDIN_ENDED;
}

/* Copy the server's bytes to stdout until it closes its side. */
static void print_replies(int fd)
{
    /* TODO: read() and copy to stdout until read() returns 0: that 0 is the server's
     * FIN.  A reply can arrive in pieces; print whatever you get. */
    TODO("print the replies until EOF");
}

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s HOST PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);

    /* TODO: a write to a server that is gone must fail with EPIPE, not kill the
     * program: decide what SIGPIPE does (README, "Writing to a peer that has gone: EPIPE
     * and SIGPIPE"). */

    int fd = tcp_connect_or_die(argv[1], port);

    if (send_lines(fd) == CLOSE_ASKED) {
        /* TODO: give up both directions at once, then exit 0.  Anything the server
         * still sends will be refused -- that is what the grader checks. */
        TODO("close on a `close` line");
    }

    /* TODO: stdin has ended: tell the server "no more requests" (a FIN) while still
     * being able to read its replies.  close() cannot do that (README, "Two directions,
     * ended one at a time").
     * Then print the replies, print `server closed`, close the socket, exit 0. */
    TODO("half-close, then read the replies");
    print_replies(fd);
    return 0;
}
