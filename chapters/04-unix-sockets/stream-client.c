/*
 * stream-client NAME - send each stdin line to a Unix stream server and print the
 * reply line; at the end of stdin, close and exit 0.  See README.md, "Contract".
 */
#include "common.h"
#include "unixlab.h"

#include <signal.h>

static int connect_unix(const char *name)
{
    struct sockaddr_un addr;
    socklen_t len = unix_address(&addr, name);

    /* TODO: a SOCK_STREAM Unix socket, connect()ed to addr.  On failure
     * fatal(errno, "connect"): the errno tells the user what is wrong (no file,
     * nobody listening, or a socket of the other type). */
    (void)len;
    TODO("connect_unix: socket, connect");
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s NAME", argv[0]);

    int fd = connect_unix(argv[1]);

    /* TODO: for each stdin line (getline): send it with its '\n', read one reply line
     * (a line_reader on fd), print it.  If the server closes first -- read returns 0,
     * or fails with ECONNRESET, or a write fails with EPIPE (which raises SIGPIPE first:
     * decide what that signal does) -- fatal(0, "server closed the connection").
     * At the end of stdin close fd and exit 0. */
    (void)fd;
    TODO("line loop");
}
