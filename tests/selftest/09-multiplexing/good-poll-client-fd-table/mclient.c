/*
 * SELF-TEST CASE (good): mclient written with poll() instead of select(), a
 * send()/recv() pair, and stdin dropped from the array by setting its fd to -1.
 */
#include "common.h"

#include <poll.h>

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s HOST PORT", argv[0]);
    int sock = tcp_connect_or_die(argv[1], parse_port_or_die(argv[2]));
    struct pollfd pfd[2] = { { .fd = sock, .events = POLLIN }, { .fd = 0, .events = POLLIN } };
    char buf[1500];

    for (;;) {
        int n = poll(pfd, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fatal(errno, "poll");
        if (pfd[0].revents) {
            ssize_t got = recv(sock, buf, sizeof buf, 0);
            if (got < 0)
                fatal(errno, "recv");
            if (got == 0) {
                if (pfd[1].fd >= 0)
                    fatal(0, "server terminated");
                puts("server closed");
                return 0;
            }
            fwrite(buf, 1, (size_t)got, stdout);
            fflush(stdout);
        }
        if (pfd[1].fd >= 0 && pfd[1].revents) {
            ssize_t got = read(0, buf, sizeof buf);
            if (got < 0)
                fatal(errno, "read stdin");
            if (got == 0) {
                shutdown(sock, SHUT_WR);
                pfd[1].fd = -1;             /* poll() ignores negative descriptors */
            } else if (send(sock, buf, (size_t)got, MSG_NOSIGNAL) != got) {
                fatal(errno, "send");
            }
        }
    }
}
