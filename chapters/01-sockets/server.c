/*
 * server PORT [ADDRESS] - listen on ADDRESS:PORT (default 0.0.0.0), say where, and greet
 * each client with the address and port it came from.  See README.md, "Contract".
 */
#include "common.h"

/* Create a TCP socket bound to address:port and listening; return its descriptor. */
static int listen_on(const char *address, uint16_t port)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    /* TODO: fill addr: family, port (network byte order), and the address parsed from
     * text with inet_pton.  Invalid text must end the program with
     *     fatal(0, "invalid address '%s'", address);
     * Then socket(), bind(), listen().  Check each call; on failure report it by name,
     * e.g. fatal(errno, "bind"), which prints "bind: Address already in use (98)". */
    TODO("listen_on: sockaddr_in, socket, bind, listen");
}

/* Tell one client where it came from:  "hello 127.0.0.1:40312\n". */
static void greet(int conn, const struct sockaddr_in *peer)
{
    /* TODO: turn peer's address into text (inet_ntop) and its port into a number
     * (ntohs), print "connection from IP:PORT" on stdout and send "hello IP:PORT\n"
     * to the client with writen(). */
    (void)conn;
    (void)peer;
    TODO("greet");
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3)
        fatal(0, "usage: %s PORT [ADDRESS]", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);
    const char *address = argc == 3 ? argv[2] : "0.0.0.0";

    int listen_fd = listen_on(address, port);

    /* TODO: PORT may be 0, which lets the kernel choose.  Ask the socket which port it
     * really has (getsockname) and print "listening on ADDRESS:PORT" with that port. */

    for (;;) {
        /* TODO: accept() a connection, keeping the client's address; greet it; close
         * the accepted socket (never the listening one).  accept() can fail with EINTR
         * or ECONNABORTED for reasons that are not fatal: just try again. */
        (void)listen_fd;
        TODO("accept loop");
    }
}
