/*
 * dgram-server NAME - a Unix datagram server: answers each datagram with "Hi, <text>"
 * sent back to the sender's address, and removes its socket file when it stops.
 * See README.md, "Contract".
 */
#include "common.h"
#include "unixlab.h"

#define MAX_DATAGRAM 2048

static int bind_unix_dgram(const char *name)
{
    struct sockaddr_un addr;
    socklen_t len = unix_address(&addr, name);

    /* TODO: socket(AF_UNIX, SOCK_DGRAM, 0); remove_stale_socket; bind;
     * remove_on_exit.  (No listen/accept: there are no connections.) */
    (void)len;
    TODO("bind_unix_dgram: socket, bind");
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s NAME", argv[0]);

    int fd = bind_unix_dgram(argv[1]);
    printf("listening on %s\n", argv[1]);

    for (;;) {
        /* TODO: recvfrom() one datagram together with its sender's address.  The
         * address length is in/out: how much room you have going in, how much was used
         * coming out.  Then
         *   - print "Receive: <text>" (0 bytes is a valid, empty datagram);
         *   - an unbound sender has no address (the length comes back no bigger than
         *     offsetof(struct sockaddr_un, sun_path)): print
         *     "cannot reply: the client has no address" and go on;
         *   - otherwise sendto() "Hi, <text>" to that address -- "Hi, " and then the n
         *     bytes received, exactly: a datagram may hold NUL bytes, which "%s" would
         *     stop at; if that fails, warn and go on: one vanished client must not stop
         *     the server. */
        (void)fd;
        TODO("recvfrom / sendto loop");
    }
}
