/*
 * addr ADDRESS PORT - fill a socket address the way bind/connect need it, and show it.
 *
 * Reference solution for chapter 01.
 */
#include "common.h"

static void print_port(uint16_t port_in_network_order)
{
    /* The bytes exactly as they sit in memory, i.e. as they will go on the wire. */
    const unsigned char *bytes = (const unsigned char *)&port_in_network_order;
    printf("port %u bytes %02x %02x\n", ntohs(port_in_network_order), bytes[0], bytes[1]);
}

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s ADDRESS PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);
    char text[INET6_ADDRSTRLEN];

    struct sockaddr_in v4;
    memset(&v4, 0, sizeof(v4));
    if (inet_pton(AF_INET, argv[1], &v4.sin_addr) >= 0) {  /* wrong: 0 means "not an address" */
        v4.sin_family = AF_INET;
        v4.sin_port = htons(port);
        if (inet_ntop(AF_INET, &v4.sin_addr, text, sizeof(text)) == NULL)
            fatal(errno, "inet_ntop");
        printf("family AF_INET\naddress %s\n", text);
        print_port(v4.sin_port);
        printf("size %zu\n", sizeof(v4));
        return 0;
    }

    struct sockaddr_in6 v6;
    memset(&v6, 0, sizeof(v6));
    if (inet_pton(AF_INET6, argv[1], &v6.sin6_addr) == 1) {
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons(port);
        if (inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof(text)) == NULL)
            fatal(errno, "inet_ntop");
        printf("family AF_INET6\naddress %s\n", text);
        print_port(v6.sin6_port);
        printf("size %zu\n", sizeof(v6));
        return 0;
    }

    fatal(0, "invalid address '%s'", argv[1]);
}
