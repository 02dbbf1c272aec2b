/*
 * client HOST PORT - connect, introduce ourselves in 6 binary bytes, print the reply.
 *
 * Reference solution for chapter 01.
 */
#include "common.h"

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s HOST PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);

    struct sockaddr_in server;
    memset(&server, 0, sizeof(server));
    server.sin_family = AF_INET;
    server.sin_port = htons(port);
    if (inet_pton(AF_INET, argv[1], &server.sin_addr) != 1)
        fatal(0, "invalid address '%s'", argv[1]);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    if (connect(fd, (struct sockaddr *)&server, sizeof(server)) < 0)
        fatal(errno, "connect");

    /* The kernel picked our address and port during connect; ask which. */
    struct sockaddr_in self;
    socklen_t len = sizeof(self);
    if (getsockname(fd, (struct sockaddr *)&self, &len) < 0)
        fatal(errno, "getsockname");

    /* Both fields are already in network byte order: send them as they are. */
    unsigned char intro[6];
    memcpy(intro, &self.sin_addr.s_addr, 4);
    uint16_t wrong = htons(self.sin_port);  /* converts twice */
    memcpy(intro + 4, &wrong, 2);
    if (writen(fd, intro, sizeof(intro)) < 0)
        fatal(errno, "write");

    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fatal(errno, "read");
        }
        if (n == 0)
            break;
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
            fatal(errno, "fwrite");
        fflush(stdout);
    }
    close(fd);
    return 0;
}
