/*
 * talker HOST PORT - one request, one reply: send each line of standard input, then
 * wait for the server's one-line answer and print it.  A server that has gone away
 * shows up as end-of-file on the next read.
 *
 * Reference solution for chapter 06.
 */
#include "common.h"

#include <signal.h>

#define REPLY_MAX 1024

/* Wait for one reply line and print it.  Returns 0, or -1 if the server closed. */
static int print_reply(struct line_reader *lr)
{
    char reply[REPLY_MAX];
    ssize_t n = read_line(lr, reply, sizeof(reply));

    if (n < 0)
        fatal(errno, "read");
    if (n == 0)
        return -1;
    fputs(reply, stdout);
    if (reply[n - 1] != '\n')
        putchar('\n');
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s HOST PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);

    /* The write after the server died may fail (EPIPE): report it, do not die. */

    int fd = tcp_connect_or_die(argv[1], port);
    struct line_reader lr;
    line_reader_init(&lr, fd);

    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        /* To a server that crashed this write still succeeds: the kernel only
         * queues the bytes.  The read below is where we learn the truth. */
        if (writen(fd, line, (size_t)n) < 0)
            fatal(errno, "write");
        /* WRONG: read() returning 0 is taken for an empty reply, and we carry on. */
        if (print_reply(&lr) < 0)
            putchar('\n');
    }
    free(line);
    if (close(fd) < 0)
        fatal(errno, "close");
    return 0;
}
