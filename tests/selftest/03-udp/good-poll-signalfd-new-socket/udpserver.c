/* A correct udpserver written differently: signalfd + poll instead of a handler,
 * IPv4 sockaddr_in and a single reply buffer with the prefix kept in place. */
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>

#include "common.h"

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s PORT", argv[0]);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(parse_port_or_die(argv[1]))};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        fatal(errno, "bind");

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        fatal(errno, "sigprocmask");
    int sfd = signalfd(-1, &mask, 0);
    if (sfd < 0)
        fatal(errno, "signalfd");
    printf("bound to 0.0.0.0:%d\n", local_port(fd));

    static char buf[4 + 65507] = "Hi, ";
    unsigned datagrams = 0;
    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            fatal(errno, "poll");
        }
        if (p[1].revents)
            break;
        struct sockaddr_in from;
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(fd, buf + 4, sizeof(buf) - 4, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
        if (n < 0)
            continue;
        datagrams++;
        printf("received %d bytes: %.*s\n", (int)n, (int)n, buf + 4);
        if (sendto(fd, buf, 4 + (size_t)n, 0, (struct sockaddr *)&from, flen) < 0)
            perror("sendto");
    }
    printf("received %u datagrams\n", datagrams);
    return 0;
}
