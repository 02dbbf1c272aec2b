/*
 * graceclient HOST PORT - send standard input to a server line by line; when standard
 * input ends, half-close the connection (shutdown SHUT_WR) and print the server's
 * replies until the server closes too.  A line "close" closes the socket instead, to
 * show what close() throws away.
 *
 * Reference solution for chapter 06.  Deliberately without poll()/select() (that is
 * lesson 09): all of stdin is sent first, then the replies are read.  Replies that
 * arrive meanwhile simply wait in the socket's receive buffer.
 */
#include "common.h"

#include <signal.h>

enum input_end { STDIN_ENDED, CLOSE_ASKED };

/* Send every line of stdin as it is (with its '\n'); stop at EOF or at "close". */
static enum input_end send_lines(int fd)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    enum input_end why = STDIN_ENDED;

    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (strcmp(line, "close\n") == 0 || strcmp(line, "close") == 0) {
            why = CLOSE_ASKED;
            break;
        }
        if (writen(fd, line, (size_t)n) < 0)
            fatal(errno, "write");
    }
    if (why == STDIN_ENDED && ferror(stdin))
        fatal(errno, "read stdin");
    free(line);
    return why;
}

/* Copy the server's bytes to stdout until it closes its side (read returns 0). */
static void print_replies(int fd)
{
    char buf[4096];

    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fatal(errno, "read");
        }
        if (n == 0)
            return;
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
            fatal(errno, "fwrite");
        fflush(stdout);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s HOST PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);

    /* A write to a server that has gone must come back as EPIPE, not kill us. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        fatal(errno, "signal");

    int fd = tcp_connect_or_die(argv[1], port);

    if (send_lines(fd) == CLOSE_ASKED) {
        /* Both directions are gone: whatever the server still sends is answered
         * with a reset, and we could not read it anyway. */
        if (close(fd) < 0)
            fatal(errno, "close");
        return 0;
    }

    /* Half-close: FIN to the server ("no more requests"), replies still welcome. */
    /* WRONG: no shutdown(SHUT_WR): the server never learns we are done. */
    print_replies(fd);
    printf("server closed\n");
    if (close(fd) < 0)
        fatal(errno, "close");
    return 0;
}
