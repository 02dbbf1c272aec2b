/* A correct addr written differently: one sockaddr_storage, a table of families. */
#include "common.h"

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: addr ADDRESS PORT");
    struct sockaddr_storage ss;
    socklen_t len = fill_sockaddr(&ss, argv[1], parse_port_or_die(argv[2]));
    if (len == (socklen_t)-1)
        fatal(0, "invalid address '%s'", argv[1]);
    const void *ip = ss.ss_family == AF_INET ? (void *)&((struct sockaddr_in *)&ss)->sin_addr
                                             : (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
    const unsigned char *p = ss.ss_family == AF_INET
        ? (unsigned char *)&((struct sockaddr_in *)&ss)->sin_port
        : (unsigned char *)&((struct sockaddr_in6 *)&ss)->sin6_port;
    char text[64];
    inet_ntop(ss.ss_family, ip, text, sizeof(text));
    printf("family %s\naddress %s\nport %u bytes %02x %02x\nsize %u\n",
           ss.ss_family == AF_INET ? "AF_INET" : "AF_INET6", text, (p[0] << 8) | p[1], p[0], p[1],
           (unsigned)len);
    return 0;
}
