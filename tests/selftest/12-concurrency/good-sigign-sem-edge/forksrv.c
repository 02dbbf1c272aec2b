/* Self-test alternative: the kernel reaps children (explicit SIG_IGN for SIGCHLD). */
#include "common.h"

#include <signal.h>

static void rot13_serve(int fd)
{
    char buf[1024];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        for (ssize_t i = 0; i < n; i++) {
            char c = buf[i], base = (c >= 'a' && c <= 'z') ? 'a' : (c >= 'A' && c <= 'Z') ? 'A' : 0;
            if (base)
                buf[i] = (char)(base + (c - base + 13) % 26);
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                return;
            }
            off += w;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);
    struct sigaction ign = { .sa_handler = SIG_IGN };
    sigemptyset(&ign.sa_mask);
    if (sigaction(SIGCHLD, &ign, NULL) < 0 || sigaction(SIGPIPE, &ign, NULL) < 0)
        fatal(errno, "sigaction");
    int lfd = tcp_listen_or_die(NULL, port, 64);
    printf("listening on %d\n", local_port(lfd));
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fatal(errno, "accept4");
        }
        switch (fork()) {
        case -1:
            warning(errno, "fork");
            break;
        case 0:
            close(lfd);
            rot13_serve(fd);
            _exit(0);       /* exit closes fd */
        }
        close(fd);
    }
}
