/* Self-test alternative: edge-triggered epoll, connections indexed by fd, reads drained,
 * output buffered without bound (no back-pressure), prlimit() instead of setrlimit();
 * after EMFILE it accepts again when a connection closes (no new edge would come). */
#include "common.h"

#include <signal.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/resource.h>

struct client {
    char *out;
    size_t len, cap;
    int eof;
};

static struct client **table;
static size_t table_size;

static void drop(int ep, int fd)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(table[fd]->out);
    free(table[fd]);
    table[fd] = NULL;
}

/* Accept every waiting client; true if accept stopped for want of a descriptor. */
static bool accept_all(int ep, int lfd)
{
    int c;
    while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
        if ((size_t)c >= table_size || (table[c] = calloc(1, sizeof **table)) == NULL) {
            close(c);
            continue;
        }
        struct epoll_event cev = { .events = EPOLLIN | EPOLLOUT | EPOLLET, .data.fd = c };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) < 0)
            fatal(errno, "epoll_ctl");
    }
    return errno == EMFILE || errno == ENFILE;
}

static int push_out(int fd, struct client *c)
{
    size_t off = 0;
    while (off < c->len) {
        ssize_t w = send(fd, c->out + off, c->len - off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            return -1;
        }
        off += (size_t)w;
    }
    memmove(c->out, c->out + off, c->len - off);
    c->len -= off;
    return 0;
}

static int pull_in(int fd, struct client *c)
{
    for (;;) {
        if (c->cap - c->len < 4096) {
            size_t ncap = c->cap ? c->cap * 2 : 8192;
            char *p = realloc(c->out, ncap);
            if (p == NULL)
                return -1;
            c->out = p;
            c->cap = ncap;
        }
        ssize_t n = recv(fd, c->out + c->len, c->cap - c->len, 0);
        if (n == 0) {
            c->eof = 1;
            return 0;
        }
        if (n < 0)
            return (errno == EAGAIN) ? 0 : (errno == EINTR) ? pull_in(fd, c) : -1;
        for (char *p = c->out + c->len; p < c->out + c->len + n; p++) {
            if (*p >= 'a' && *p <= 'z')
                *p = (char)('a' + (*p - 'a' + 13) % 26);
            else if (*p >= 'A' && *p <= 'Z')
                *p = (char)('A' + (*p - 'A' + 13) % 26);
        }
        c->len += (size_t)n;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (prlimit(0, RLIMIT_NOFILE, NULL, &rl) < 0)
        fatal(errno, "prlimit");
    rl.rlim_cur = rl.rlim_max;
    if (prlimit(0, RLIMIT_NOFILE, &rl, NULL) < 0)
        fatal(errno, "prlimit");
    table_size = rl.rlim_cur > (1u << 20) ? (1u << 20) : rl.rlim_cur;
    table = calloc(table_size, sizeof *table);
    if (table == NULL)
        fatal(errno, "calloc");

    int lfd = tcp_listen_or_die(NULL, port, 8192);
    make_nonblocking(lfd);
    int ep = epoll_create1(0);
    if (ep < 0)
        fatal(errno, "epoll_create1");
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.fd = lfd };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        fatal(errno, "epoll_ctl");
    printf("listening on %d\n", local_port(lfd));

    struct epoll_event evs[64];
    bool starved = false;       /* accept stopped on EMFILE with clients left waiting */
    for (;;) {
        int n = epoll_wait(ep, evs, 64, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fatal(errno, "epoll_wait");
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                starved = accept_all(ep, lfd);
                continue;
            }
            struct client *c = table[fd];
            if (c == NULL)
                continue;
            if (pull_in(fd, c) < 0 || push_out(fd, c) < 0 || (c->eof && c->len == 0)) {
                drop(ep, fd);
                if (starved)    /* edge-triggered: no new edge comes for clients already waiting */
                    starved = accept_all(ep, lfd);
            }
        }
    }
}
