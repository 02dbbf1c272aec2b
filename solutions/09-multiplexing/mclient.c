/*
 * mclient HOST PORT - talk to a server from the terminal, both ways at once.
 *
 * One select() watches standard input and the socket together, so whatever the
 * server sends is printed the moment it arrives, even while nobody types.
 * At the end of stdin the client half-closes (FIN) and keeps printing until the
 * server closes too.  See README.md, "Contract".
 *
 * Reference solution for chapter 09.
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

    fd_set watched;                 /* what we want to hear about; select() gets a copy */
    FD_ZERO(&watched);
    FD_SET(STDIN_FILENO, &watched);
    FD_SET(fd, &watched);
    int stdin_open = 1;

    for (;;) {
        fd_set readable = watched;  /* select() overwrites its argument: copy every time */
        if (select(fd + 1, &readable, NULL, NULL, NULL) < 0) {
            if (errno == EINTR)
                continue;
            fatal(errno, "select");
        }

        if (FD_ISSET(fd, &readable) && relay_from_server(fd) == 0) {
            if (stdin_open)
                fatal(0, "server terminated");
            printf("server closed\n");
            break;
        }

        if (stdin_open && FD_ISSET(STDIN_FILENO, &readable) && relay_to_server(fd) == 0) {
            /* End of input: tell the server (FIN), but keep reading its replies.  stdin
             * stays "readable" at EOF forever, so stop watching it or select() never
             * sleeps again. */
            if (shutdown(fd, SHUT_WR) < 0)
                fatal(errno, "shutdown");
            FD_CLR(STDIN_FILENO, &watched);
            stdin_open = 0;
        }
    }

    if (close(fd) < 0)
        fatal(errno, "close");
    return 0;
}
