/*
 * server PORT [ADDRESS] - listen, say where, and greet each client with its own address.
 *
 * Reference solution for chapter 01.
 */
#include "common.h"

static int listen_on(const char *address, uint16_t port)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (inet_pton(AF_INET, address, &addr.sin_addr) != 1)
        fatal(0, "invalid address '%s'", address);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        fatal(errno, "bind");
    if (listen(fd, 16) < 0)
        fatal(errno, "listen");
    return fd;
}

static void greet(int conn, const struct sockaddr_in *peer)
{
    char ip[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &peer->sin_addr, ip, sizeof(ip)) == NULL)
        fatal(errno, "inet_ntop");
    printf("connection from %s:%u\n", ip, ntohs(peer->sin_port));

    char line[64];
    int n = snprintf(line, sizeof(line), "hello %s:%u\n", ip, ntohs(peer->sin_port));
    if (writen(conn, line, (size_t)n) < 0)
        warning(errno, "write");
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3)
        fatal(0, "usage: %s PORT [ADDRESS]", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);
    const char *address = argc == 3 ? argv[2] : "0.0.0.0";

    int listen_fd = listen_on(address, port);

    /* Port 0 asks the kernel to choose: only getsockname can tell which it chose. */
    struct sockaddr_in bound;
    socklen_t len = sizeof(bound);
    if (getsockname(listen_fd, (struct sockaddr *)&bound, &len) < 0)
        fatal(errno, "getsockname");
    printf("listening on %s:%u\n", address, bound.sin_port);

    for (;;) {
        struct sockaddr_in peer;
        socklen_t peer_len = sizeof(peer);
        int conn = accept(listen_fd, (struct sockaddr *)&peer, &peer_len);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fatal(errno, "accept");
        }
        greet(conn, &peer);
        if (close(conn) < 0)
            warning(errno, "close");
    }
}
