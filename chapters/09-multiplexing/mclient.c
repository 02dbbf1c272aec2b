/*
 * mclient HOST PORT - talk to a server from the terminal, both ways at once.
 *
 * One select() watches standard input and the socket together, so whatever the
 * server sends is printed the moment it arrives, even while nobody types.
 * At the end of stdin the client half-closes (FIN) and keeps printing until the
 * server closes too.  See README.md, "Contract".
 *
 * Your part: the select() loop in main.
 */
#include "common.h"

#include <signal.h>
#include <sys/select.h>

#define CHUNK 4096

/* Copy what the server sent to stdout.  Returns the byte count; 0 = the server closed. */
static ssize_t relay_from_server(int fd)
{
    char buf[CHUNK];
    ssize_t n;

    do
        n = read(fd, buf, sizeof(buf));
    while (n < 0 && errno == EINTR);
    if (n < 0)
        fatal(errno, "read");
    if (n > 0 && writen(STDOUT_FILENO, buf, (size_t)n) < 0)
        fatal(errno, "write stdout");
    return n;
}

/* Send what is available on stdin.  Returns the byte count; 0 = end of input. */
static ssize_t relay_to_server(int fd)
{
    char buf[CHUNK];
    ssize_t n;

    do
        n = read(STDIN_FILENO, buf, sizeof(buf));
    while (n < 0 && errno == EINTR);
    if (n < 0)
        fatal(errno, "read stdin");
    if (n > 0 && writen(fd, buf, (size_t)n) < 0)
        fatal(errno, "write");
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s HOST PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);

    /* A server that vanished makes write() fail with EPIPE: report it, do not die. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        fatal(errno, "signal");

    int fd = tcp_connect_or_die(argv[1], port);

    /* TODO: the select() loop (README, "select").
     *  - Keep a "watched" fd_set with STDIN_FILENO and fd.  select() overwrites the
     *    set you give it, so pass it a copy, made afresh before every call.  Its
     *    first argument is the highest descriptor + 1.  EINTR: just call it again.
     *  - The socket readable: relay_from_server().  It returning 0 means the server
     *    closed: before the end of stdin, that is an error -- fatal(0, "server
     *    terminated"); after it, print `server closed` and leave the loop.
     *  - stdin readable: relay_to_server().  It returning 0 is the end of input:
     *    half-close the connection so the server sees EOF but can still answer,
     *    and stop watching stdin -- at EOF it stays readable forever, and a
     *    select() that keeps reporting it never sleeps again. */
    TODO("the select() loop: stdin and the socket together");

    if (close(fd) < 0)
        fatal(errno, "close");
    return 0;
}
