/*
 * stream-server NAME - a Unix stream echo server: answers each line with "Hi, <line>",
 * one client after another, and removes its socket file when it stops.
 * See README.md, "Contract".
 */
#include "common.h"
#include "unixlab.h"

#include <signal.h>

/* Create a SOCK_STREAM Unix socket bound to NAME and listening; return it. */
static int listen_unix(const char *name)
{
    struct sockaddr_un addr;
    socklen_t len = unix_address(&addr, name);

    /* TODO: socket(AF_UNIX, SOCK_STREAM, 0); make the path free (remove_stale_socket);
     * bind() with the length unix_address returned; remove_on_exit(name) as soon as the
     * file exists; listen().  Report a failing call by name: fatal(errno, "bind"). */
    (void)len;
    TODO("listen_unix: socket, bind, listen");
}

/* Print "client pid PID uid UID" for the process at the other end of conn. */
static void print_peer(int conn)
{
    /* TODO: a Unix socket knows who connected: getsockopt(SOL_SOCKET, SO_PEERCRED)
     * fills a struct ucred (pid, uid, gid) that the client cannot forge. */
    (void)conn;
    TODO("print_peer: SO_PEERCRED");
}

/* Echo lines until the client leaves. */
static void serve_client(int conn)
{
    /* TODO: read lines (a line_reader from common.h keeps bytes that arrived with the
     * previous line).  For each: print "Receive: <line>" and write "Hi, <line>\n" back.
     * read_line() returning 0 means the client closed: print "client quit".  A write
     * that fails (EPIPE: the client stopped reading) also ends this client, not the
     * server. */
    (void)conn;
    TODO("serve_client: Receive / Hi, / client quit");
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s NAME", argv[0]);
    /* TODO: a write to a peer that is gone raises SIGPIPE, which kills by default.
     * Decide what it should do to this server. */

    int listen_fd = listen_unix(argv[1]);
    printf("listening on %s\n", argv[1]);

    for (;;) {
        /* TODO: accept a client (EINTR and ECONNABORTED: just try again), print_peer,
         * serve it, close it, and wait for the next one. */
        (void)listen_fd;
        (void)print_peer;
        (void)serve_client;
        TODO("accept loop");
    }
}
