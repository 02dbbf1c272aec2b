/*
 * addr ADDRESS PORT - fill in a socket address the way bind() and connect() need it,
 * then show what you stored.  See README.md, "The exercise" and "Contract".
 */
#include "common.h"

/* Print "port <P> bytes <b0> <b1>": the port's value and its two bytes as they sit in
 * memory (and so as they travel on the wire). */
static void print_port(uint16_t port_in_network_order)
{
    const unsigned char *bytes = (const unsigned char *)&port_in_network_order;
    (void)bytes;
    /* TODO: print the value (convert it back to host order first) and bytes[0], bytes[1]
     * as two-digit lowercase hex.  For 12345 the line is "port 12345 bytes 30 39". */
    TODO("print_port");
}

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s ADDRESS PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);

    struct sockaddr_in v4;
    memset(&v4, 0, sizeof(v4));
    /* TODO: try to parse argv[1] as IPv4 text into v4.sin_addr.  inet_pton returns 1 on
     * success -- and 0 (not -1!) for text that is not an address, so test for == 1.
     * On success: set the family and the port (in network byte order), print
     *     family AF_INET / address <text> / port ... / size <sizeof the struct>
     * with the address turned back into text by inet_ntop, and return 0. */
    TODO("IPv4: inet_pton, fill sockaddr_in, print it");

    /* TODO: otherwise try IPv6 the same way with a struct sockaddr_in6
     * (family AF_INET6; inet_ntop prints the canonical, shortest form). */

    /* Neither parse worked: the contract says exit 1 with this message. */
    fatal(0, "invalid address '%s'", argv[1]);
}
