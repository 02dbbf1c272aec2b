/*
 * stream-client NAME - send each stdin line to a Unix stream server and print the
 * reply line; at the end of stdin, close and exit 0.
 *
 * Reference solution for chapter 04.
 */
#include "common.h"
#include "unixlab.h"

#include <signal.h>

static int connect_unix(const char *name)
{
    struct sockaddr_un addr;
    socklen_t len = unix_address(&addr, name);

    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    if (connect(fd, (struct sockaddr *)&addr, len) < 0)
        fatal(errno, "connect");
    return fd;
}

/* The three ways a server that has gone shows itself: EOF on a read, a reset on a read
 * (it closed with our line unread), EPIPE on a write (it had closed already). */
static void server_gone(void)
{
    fatal(0, "server closed the connection");
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s NAME", argv[0]);
    /* A write to a server that has closed must come back as EPIPE, not kill us. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        fatal(errno, "signal");

    int fd = connect_unix(argv[1]);
    struct line_reader replies;
    line_reader_init(&replies, fd);

    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    char reply[2048];
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (line[n - 1] != '\n')
            line[n++] = '\n';               /* getline leaves room for the NUL we replace */
        if (writen(fd, line, (size_t)n) < 0) {
            if (errno == EPIPE || errno == ECONNRESET)
                server_gone();
            fatal(errno, "write");
        }
        ssize_t got = read_line(&replies, reply, sizeof(reply));
        if (got < 0) {
            if (errno == ECONNRESET)
                server_gone();
            fatal(errno, "read");
        }
        if (got == 0)
            server_gone();
        fputs(reply, stdout);
        if (reply[got - 1] != '\n')
            putchar('\n');
    }
    free(line);
    if (close(fd) < 0)
        fatal(errno, "close");
    return 0;
}
