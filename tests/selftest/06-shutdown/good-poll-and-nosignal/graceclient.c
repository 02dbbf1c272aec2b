/* A correct graceclient written differently: poll() on stdin and the socket, replies
 * printed as soon as they arrive, MSG_NOSIGNAL instead of ignoring SIGPIPE. */
#include "common.h"

#include <poll.h>

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            fatal(errno, "send");
        }
        p += w;
        n -= (size_t)w;
    }
}

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s HOST PORT", argv[0]);
    int fd = tcp_connect_or_die(argv[1], parse_port_or_die(argv[2]));
    struct line_reader in;
    line_reader_init(&in, STDIN_FILENO);
    struct pollfd pfd[2] = { { .fd = fd, .events = POLLIN }, { .fd = STDIN_FILENO, .events = POLLIN } };
    int nfds = 2;
    char buf[4096];

    for (;;) {
        if (poll(pfd, (nfds_t)nfds, -1) < 0) {
            if (errno == EINTR)
                continue;
            fatal(errno, "poll");
        }
        if (pfd[0].revents) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n < 0)
                fatal(errno, "recv");
            if (n == 0)
                break;
            fwrite(buf, 1, (size_t)n, stdout);
            fflush(stdout);
        }
        if (nfds == 2 && pfd[1].revents) {
            /* one line per wake-up; the reader keeps the rest for the next call */
            do {
                ssize_t n = read_line(&in, buf, sizeof(buf));
                if (n < 0)
                    fatal(errno, "read stdin");
                if (n == 0) {
                    if (shutdown(fd, SHUT_WR) < 0)
                        fatal(errno, "shutdown");
                    nfds = 1;
                    break;
                }
                if (strcmp(buf, "close\n") == 0) {
                    close(fd);
                    return 0;
                }
                send_all(fd, buf, (size_t)n);
            } while (line_reader_pending(&in) > 0 && memchr(in.buf + in.start, '\n',
                                                              line_reader_pending(&in)));
        }
    }
    puts("server closed");
    close(fd);
    return 0;
}
