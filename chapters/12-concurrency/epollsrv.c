/*
 * epollsrv PORT - the rot13 service in one thread, with non-blocking sockets and epoll.
 *
 * One thread watches the listener and every connection.  Each connection has a
 * small buffer: bytes read from it are transformed and written back; what the
 * client does not take yet stays in the buffer, and until it is gone we stop
 * reading from that client (so a client that does not read slows only itself).
 * See README.md, "Contract".
 *
 * Your part: raise_open_files_limit, accept_all, flush_conn and on_conn_event.
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
    /* TODO: read RLIMIT_NOFILE and raise the soft limit (rlim_cur) to the hard
     * one (rlim_max).  Only root may raise the hard limit itself.  An unlimited hard
     * limit (RLIM_INFINITY) is more than setrlimit allows for open files: then use
     * /proc/sys/fs/nr_open, the kernel's ceiling, as the target. */
    TODO("raise the open-files limit");
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
    /* TODO: accept until the kernel has no connection left (EAGAIN: the listener
     * is non-blocking); many can be waiting after one wakeup.  Each new socket is
     * non-blocking too (accept4 can do it), gets a struct conn, and is watched for
     * EPOLLIN with the conn as its data.  EINTR / ECONNABORTED: just go on.
     * EMFILE / ENFILE (out of fds): the listener stays readable, so watching it
     * would spin -- stop watching it (s->accepting = 0) until close_conn frees an
     * fd.  Anything else is fatal. */
    (void)s;
    TODO("accept_all");
}

/* Send what is buffered.  Returns 0 when all is sent, 1 when the client's
 * buffer is full (wait for EPOLLOUT), -1 when the connection failed. */
static int flush_conn(struct conn *c)
{
    /* TODO: write buf[sent .. len) until it is all gone (then reset len and
     * sent to 0 and return 0).  A write may take only part of it.  EAGAIN means the
     * client's buffers are full: return 1 and let EPOLLOUT say when to go on.  A
     * real error: warning and -1. */
    (void)c;
    TODO("flush_conn");
}

static void on_conn_event(struct server *s, struct conn *c, uint32_t events)
{
    /* TODO: two cases.
     *  - Bytes are still waiting to be sent (c->len > 0): this is EPOLLOUT.  Send
     *    more; once all is gone, watch EPOLLIN again instead of EPOLLOUT.
     *  - Otherwise read once into buf.  0 = the client is done: close_conn.  EAGAIN:
     *    nothing after all.  An error (ECONNRESET...): close_conn.  Data: rot13 it,
     *    send it; what the client cannot take now stays in buf, and the connection
     *    is watched for EPOLLOUT only -- do not read more from a client that is not
     *    reading its replies.
     * Never block, never loop on EAGAIN: another client may be waiting. */
    (void)s;
    (void)c;
    (void)events;
    (void)rot13;
    TODO("on_conn_event");
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
