/*
 * SELF-TEST CASE (good): epollsrv with a table of connections indexed by descriptor
 * (data.fd, not data.ptr), accept4(SOCK_NONBLOCK), its own line handling (answers
 * everything up to the last '\n' in one pass), a fixed-size output ring that stops
 * reading a client while it is full (flow control) instead of growing, and EMFILE
 * handled by a reserved descriptor kept as a dup of the listener.
 */
#include "common.h"
#include "mux.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#define OUT_LIMIT (256 * 1024)

struct client {
    int used, eof;
    size_t inlen;
    char *in;                   /* up to MAX_LINE + chunk */
    struct buffer out;
};

static struct client *table;
static int table_size, ep, lfd, reserve = -1, et;

static void set_events(int fd)
{
    struct client *c = &table[fd];
    uint32_t ev = (uint32_t)et;
    if (!c->eof && buffer_len(&c->out) < OUT_LIMIT)
        ev |= EPOLLIN;
    if (buffer_len(&c->out))
        ev |= EPOLLOUT;
    struct epoll_event e = { .events = ev, .data.fd = fd };
    if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e) < 0)
        fatal(errno, "epoll_ctl");
}

static void drop(int fd)
{
    struct client *c = &table[fd];
    free(c->in);
    buffer_free(&c->out);
    memset(c, 0, sizeof(*c));
    close(fd);                  /* the only reference: epoll forgets it by itself */
}

static int pump_in(int fd)
{
    struct client *c = &table[fd];
    while (!c->eof && buffer_len(&c->out) < OUT_LIMIT) {
        size_t room = MAX_LINE + 2048 - c->inlen;   /* at least 2048: see the bound below */
        ssize_t n = recv(fd, c->in + c->inlen, room < 4096 ? room : 4096, 0);   /* READ_CHUNK */
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        if (n == 0) {
            c->eof = 1;
            break;
        }
        c->inlen += (size_t)n;
        char *last = memrchr(c->in, '\n', c->inlen);
        if (last) {
            size_t upto = (size_t)(last - c->in) + 1;
            char *dst = buffer_space(&c->out, upto);
            for (size_t i = 0; i < upto; i++)
                dst[i] = rot13(c->in[i]);
            buffer_commit(&c->out, upto);
            memmove(c->in, c->in + upto, c->inlen - upto);
            c->inlen -= upto;
        } else if (c->inlen > MAX_LINE) {
            return -1;
        }
        if (!et)
            break;
    }
    return 0;
}

static int pump_out(int fd)
{
    struct client *c = &table[fd];
    while (buffer_len(&c->out)) {
        ssize_t n = send(fd, buffer_data(&c->out), buffer_len(&c->out), MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        buffer_consume(&c->out, (size_t)n);
    }
    return 0;
}

static void on_accept(void)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EMFILE && reserve >= 0) {
                close(reserve);
                reserve = -1;
                int victim = accept(lfd, NULL, NULL);
                if (victim >= 0)
                    close(victim);
                reserve = dup(lfd);
                if (victim >= 0)
                    continue;
            }
            return;
        }
        if (fd >= table_size) {
            close(fd);
            continue;
        }
        struct client *c = &table[fd];
        c->used = 1;
        c->in = malloc(MAX_LINE + 2048);
        if (c->in == NULL)
            fatal(errno, "malloc");
        buffer_init(&c->out);
        struct epoll_event e = { .events = EPOLLIN | (uint32_t)et, .data.fd = fd };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0)
            fatal(errno, "epoll_ctl");
    }
}

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s PORT lt|et", argv[0]);
    if (strcmp(argv[2], "lt") && strcmp(argv[2], "et"))
        fatal(0, "invalid mode '%s' (lt or et)", argv[2]);
    et = argv[2][0] == 'e' ? EPOLLET : 0;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        fatal(errno, "getrlimit");
    table_size = rl.rlim_cur > 65536 ? 65536 : (int)rl.rlim_cur;
    table = calloc((size_t)table_size, sizeof(*table));
    if (table == NULL)
        fatal(errno, "calloc");

    lfd = tcp_listen_or_die(NULL, parse_port_or_die(argv[1]), 512);
    make_nonblocking(lfd);
    reserve = dup(lfd);
    ep = epoll_create1(0);
    struct epoll_event e = { .events = EPOLLIN | (uint32_t)et, .data.fd = lfd };
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e);
    printf("listening on %d\n", local_port(lfd));

    struct epoll_event evs[16];
    for (;;) {
        int n = epoll_wait(ep, evs, 16, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                on_accept();
                continue;
            }
            if (pump_in(fd) < 0 || pump_out(fd) < 0 || (table[fd].eof && !buffer_len(&table[fd].out))) {
                drop(fd);
                continue;
            }
            set_events(fd);
        }
    }
}
