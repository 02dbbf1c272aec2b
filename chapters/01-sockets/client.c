/*
 * client HOST PORT - connect, introduce ourselves with 6 binary bytes (our IPv4 address
 * and port, network byte order), then print everything the server sends until it
 * closes.  See README.md, "Contract".
 */
#include "common.h"

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s HOST PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);

    /* TODO: fill a struct sockaddr_in for HOST:PORT (invalid HOST:
     * fatal(0, "invalid address '%s'", ...)), create a TCP socket, connect(). */
    (void)port;
    TODO("sockaddr_in, socket, connect");

    /* TODO: connect() chose our own address and port: getsockname() tells which.
     * Send the 4 bytes of sin_addr.s_addr followed by the 2 bytes of sin_port.
     * Think about byte order: are they already in network order? */

    /* TODO: read() until it returns 0 (the server closed) and copy every byte to
     * stdout.  One read() may return any part of what was sent: loop.  Then exit 0. */
    return 0;
}
