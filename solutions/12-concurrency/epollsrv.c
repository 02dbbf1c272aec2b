/*
 * epollsrv PORT - the rot13 service in one thread, with non-blocking sockets and epoll.
 *
 * One thread watches the listener and every connection.  Each connection has a
 * small buffer: bytes read from it are transformed and written back; what the
 * client does not take yet stays in the buffer, and until it is gone we stop
 * reading from that client (so a client that does not read slows only itself).
 * See README.md, "Contract".
 *
 * Reference solution for chapter 12.
 */
#include "common.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#define CONN_BUFSIZE 2048
#define MAX_EVENTS 256
#define BACKLOG 4096

struct conn {
    int fd;
    size_t len;                 /* bytes in buf still to send ... */
    size_t sent;                /* ... of which these are gone */
    char buf[CONN_BUFSIZE];
};

struct server {
    int epfd;
    int listen_fd;
    int accepting;              /* 0 while paused after EMFILE */
};

static void rot13(char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = buf[i];
        if ((c >= 'a' && c <= 'm') || (c >= 'A' && c <= 'M'))
            buf[i] = (char)(c + 13);
        else if ((c >= 'n' && c <= 'z') || (c >= 'N' && c <= 'Z'))
            buf[i] = (char)(c - 13);
    }
}

/* The default soft limit (often 1024 open files) is far below 10,000 connections;
 * an unprivileged process may raise it up to the hard limit. */
static void raise_open_files_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        fatal(errno, "getrlimit");
    rlim_t want = rl.rlim_max;
    if (want == RLIM_INFINITY) {
        /* setrlimit refuses more open files than fs.nr_open, "unlimited" included */
        FILE *f = fopen("/proc/sys/fs/nr_open", "r");
        unsigned long nr_open = 1048576;
        if (f == NULL || fscanf(f, "%lu", &nr_open) != 1)
            warning(errno, "reading /proc/sys/fs/nr_open (assuming %lu)", nr_open);
        if (f != NULL)
            fclose(f);
        want = nr_open;
    }
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            fatal(errno, "setrlimit");
    }
}

/* Add/modify/remove fd in the interest set; ptr is its conn (NULL: the listener). */
static void watch(struct server *s, int op, int fd, uint32_t events, struct conn *ptr)
{
    struct epoll_event ev = { .events = events, .data.ptr = ptr };
    if (epoll_ctl(s->epfd, op, fd, &ev) < 0)
        fatal(errno, "epoll_ctl");
}

static void close_conn(struct server *s, struct conn *c)
{
    /* close() also removes the fd from the epoll set (no other copy exists) */
    if (close(c->fd) < 0)
        warning(errno, "close");
    free(c);
    if (!s->accepting) {            /* an fd is free again: resume accepting */
        s->accepting = 1;
        watch(s, EPOLL_CTL_ADD, s->listen_fd, EPOLLIN, NULL);
    }
}

/* Accept every pending connection (a burst may be waiting). */
static void accept_all(struct server *s)
{
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                /* The listener stays readable: watching it now would spin.  Pause
                 * until a connection closes. */
                warning(errno, "accept (pausing until a connection closes)");
                s->accepting = 0;
                watch(s, EPOLL_CTL_DEL, s->listen_fd, 0, NULL);
                return;
            }
            fatal(errno, "accept4");
        }
        struct conn *c = malloc(sizeof *c);
        if (c == NULL) {
            warning(errno, "malloc");
            close(fd);
            continue;
        }
        c->fd = fd;
        c->len = c->sent = 0;
        watch(s, EPOLL_CTL_ADD, fd, EPOLLIN, c);
    }
}

/* Send what is buffered.  Returns 0 when all is sent, 1 when the client's
 * buffer is full (wait for EPOLLOUT), -1 when the connection failed. */
static int flush_conn(struct conn *c)
{
    while (c->sent < c->len) {
        ssize_t n = write(c->fd, c->buf + c->sent, c->len - c->sent);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 1;
            warning(errno, "write");
            return -1;
        }
        c->sent += (size_t)n;
    }
    c->len = c->sent = 0;
    return 0;
}

static void on_conn_event(struct server *s, struct conn *c, uint32_t events)
{
    if (c->len > 0) {                       /* waiting to send: only EPOLLOUT matters */
        int r = flush_conn(c);
        if (r < 0) {
            close_conn(s, c);
        } else if (r == 0) {
            watch(s, EPOLL_CTL_MOD, c->fd, EPOLLIN, c);     /* drained: read again */
        }
        return;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    ssize_t n = read(c->fd, c->buf, sizeof c->buf);
    if (n == 0) {
        close_conn(s, c);
        return;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        if (errno != ECONNRESET)
            warning(errno, "read");
        close_conn(s, c);
        return;
    }
    rot13(c->buf, (size_t)n);
    c->len = (size_t)n;
    int r = flush_conn(c);
    if (r < 0)
        close_conn(s, c);
    else if (r == 1)                        /* stop reading until the client catches up */
        watch(s, EPOLL_CTL_MOD, c->fd, EPOLLOUT, c);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);

    signal(SIGPIPE, SIG_IGN);
    raise_open_files_limit();

    struct server s = { .accepting = 1 };
    s.listen_fd = tcp_listen_or_die(NULL, port, BACKLOG);
    if (make_nonblocking(s.listen_fd) < 0)
        fatal(errno, "fcntl");
    s.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s.epfd < 0)
        fatal(errno, "epoll_create1");
    watch(&s, EPOLL_CTL_ADD, s.listen_fd, EPOLLIN, NULL);
    printf("listening on %d\n", local_port(s.listen_fd));

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(s.epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fatal(errno, "epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr == NULL)
                accept_all(&s);
            else
                on_conn_event(&s, events[i].data.ptr, events[i].events);
        }
    }
}
