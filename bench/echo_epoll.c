/*
 * echo_epoll PORT - the echo server with nothing but epoll: no library, one thread,
 * level-triggered, one read and one write per request.  The benchmark's limit row for
 * a readiness server: what the lesson-10 reactor, libevent and libuv would cost if
 * their bookkeeping were free.
 *
 * Correct, not only fast: a write that takes part of the bytes keeps the rest, stops
 * reading that connection and waits for EPOLLOUT (so a slow reader costs memory for one
 * read's worth of bytes, never a lost byte).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 16384
#define MAX_EVENTS 256

struct conn {
    int fd;
    size_t len, sent;           /* bytes read and not yet all written back */
    char buf[BUF_SIZE];
};

static void die(const char *what)
{
    fprintf(stderr, "echo_epoll: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void drop(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

static void watch(int ep, int op, struct conn *c, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = c };
    if (epoll_ctl(ep, op, c->fd, &ev) < 0)
        die("epoll_ctl");
}

/* Write what is pending; returns -1 on error, else 0 (the rest waits for EPOLLOUT). */
static int flush(int ep, struct conn *c, int waiting)
{
    while (c->sent < c->len) {
        ssize_t n = send(c->fd, c->buf + c->sent, c->len - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -1;
            if (!waiting)
                watch(ep, EPOLL_CTL_MOD, c, EPOLLOUT);
            return 0;
        }
        c->sent += (size_t)n;
    }
    c->len = c->sent = 0;
    if (waiting)
        watch(ep, EPOLL_CTL_MOD, c, EPOLLIN);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 1;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("socket");
    int on = 1;
    if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0)
        die("setsockopt");
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])) };
    if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        die("bind");
    if (listen(lfd, 4096) < 0)
        die("listen");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0)
        die("epoll_ctl");
    printf("listening on %s\n", argv[1]);
    fflush(stdout);

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c == NULL) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0)
                        break;          /* EAGAIN (EMFILE would spin: the limit is raised above) */
                    struct conn *nc = malloc(sizeof(*nc));
                    if (nc == NULL)
                        die("malloc");
                    nc->fd = fd;
                    nc->len = nc->sent = 0;
                    watch(ep, EPOLL_CTL_ADD, nc, EPOLLIN);
                }
                continue;
            }
            if (c->len > 0) {           /* EPOLLOUT: finish the pending echo */
                if (flush(ep, c, 1) < 0)
                    drop(ep, c);
                continue;
            }
            ssize_t r = read(c->fd, c->buf, BUF_SIZE);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0) {
                drop(ep, c);
                continue;
            }
            c->len = (size_t)r;
            c->sent = 0;
            if (flush(ep, c, 0) < 0)
                drop(ep, c);
        }
    }
}
