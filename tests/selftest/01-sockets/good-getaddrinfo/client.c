/* A correct client written differently: one 6-byte buffer built from host-order values. */
#include "common.h"

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: client HOST PORT");
    struct sockaddr_storage ss;
    socklen_t len = fill_sockaddr(&ss, argv[1], parse_port_or_die(argv[2]));
    if (len == (socklen_t)-1 || ss.ss_family != AF_INET)
        fatal(0, "invalid address '%s'", argv[1]);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&ss, len) != 0)
        fatal(errno, "connect");
    struct sockaddr_in me;
    socklen_t mlen = sizeof(me);
    getsockname(fd, (struct sockaddr *)&me, &mlen);
    uint32_t ip = ntohl(me.sin_addr.s_addr);
    uint16_t port = ntohs(me.sin_port);
    unsigned char b[6] = {ip >> 24, ip >> 16, ip >> 8, ip, port >> 8, port & 0xff};
    send(fd, b, 6, 0);
    char buf[7];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
        fwrite(buf, 1, n, stdout);
    if (n < 0)
        fatal(errno, "recv");
    return 0;
}
