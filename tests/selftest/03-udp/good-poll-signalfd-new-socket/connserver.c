/* A correct connserver written differently: instead of connect(AF_UNSPEC), it closes
 * the socket of a vanished peer and binds a fresh one; sendto/recvfrom throughout. */
#include "common.h"

static int fresh_socket(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        fatal(errno, "bind");
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s PORT", argv[0]);
    int fd = fresh_socket(parse_port_or_die(argv[1]));
    uint16_t port = (uint16_t)local_port(fd);
    printf("bound to 0.0.0.0:%u\n", port);

    static char buf[4 + 65507];
    memcpy(buf, "Hi, ", 4);
    for (;;) {
        struct sockaddr_in peer;
        socklen_t plen = sizeof(peer);
        ssize_t n = recvfrom(fd, buf + 4, sizeof(buf) - 4, 0, (struct sockaddr *)&peer, &plen);
        if (n < 0)
            fatal(errno, "recvfrom");
        printf("received %zd bytes: %.*s\n", n, (int)n, buf + 4);
        if (connect(fd, (struct sockaddr *)&peer, plen) < 0)
            fatal(errno, "connect");
        char name[ADDR_STRLEN];
        format_addr((struct sockaddr *)&peer, plen, name, sizeof(name));
        printf("connected to %s\n", name);
        while (!(n == 7 && memcmp(buf + 4, "goodbye", 7) == 0)) {
            ssize_t sent = sendto(fd, buf, 4 + (size_t)n, 0, NULL, 0);
            if (sent < 0 && errno == EMSGSIZE) {
                warning(errno, "sendto");       /* too big for a datagram: no reply */
                sent = 0;
            }
            if (sent < 0 || (n = recvfrom(fd, buf + 4, sizeof(buf) - 4, 0, NULL, NULL)) < 0) {
                if (errno != ECONNREFUSED)
                    fatal(errno, "send/recv");
                close(fd);
                fd = fresh_socket(port);
                printf("disconnected from %s\n", name);
                break;
            }
            printf("received %zd bytes: %.*s\n", n, (int)n, buf + 4);
        }
        if (n == 7 && memcmp(buf + 4, "goodbye", 7) == 0)
            return 0;
    }
}
