/* epoll_backend.c - readiness through epoll(7): the interest set lives in the kernel;
 * we only tell it about changes.  Level-triggered, so one read per event is enough. */
#include "reactor-internal.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common.h"

#define EPOLL_BATCH 256

struct epoll_state {
    int epfd;
    struct epoll_event events[EPOLL_BATCH];
};

static uint32_t to_epoll(int events)
{
    return ((events & RX_READ) ? EPOLLIN : 0) | ((events & RX_WRITE) ? EPOLLOUT : 0);
}

static void *ep_create(void)
{
    struct epoll_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        fatal(errno, "calloc");
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0)
        fatal(errno, "epoll_create1");
    return s;
}

static void ep_destroy(void *state)
{
    struct epoll_state *s = state;
    close(s->epfd);
    free(s);
}

static int ep_ctl(struct epoll_state *s, int op, struct rx_channel *ch)
{
    struct epoll_event ev = {.events = to_epoll(ch->events), .data.ptr = ch};
    return epoll_ctl(s->epfd, op, ch->fd, &ev);
}

static int ep_add(void *state, struct rx_channel *ch)
{
    return ep_ctl(state, EPOLL_CTL_ADD, ch);
}

static int ep_modify(void *state, struct rx_channel *ch)
{
    return ep_ctl(state, EPOLL_CTL_MOD, ch);
}

static int ep_remove(void *state, struct rx_channel *ch)
{
    return ep_ctl(state, EPOLL_CTL_DEL, ch);
}

static int ep_wait(void *state, int timeout_ms, struct rx_ready *out, int max)
{
    struct epoll_state *s = state;
    if (max > EPOLL_BATCH)
        max = EPOLL_BATCH;
    int n = epoll_wait(s->epfd, s->events, max, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++) {
        uint32_t re = s->events[i].events;
        struct rx_channel *ch = s->events[i].data.ptr;
        int ev = 0;
        if (re & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
            ev |= RX_READ;
        if (re & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            ev |= RX_WRITE;
        out[i] = (struct rx_ready){.ch = ch, .events = ev & (ch->events | RX_READ)};
    }
    return n;
}

const struct rx_backend rx_epoll_backend = {
    .name = "epoll",
    .create = ep_create,
    .destroy = ep_destroy,
    .add = ep_add,
    .modify = ep_modify,
    .remove = ep_remove,
    .wait = ep_wait,
};

const struct rx_backend *rx_backend_by_name(const char *name)
{
    if (strcmp(name, "epoll") == 0)
        return &rx_epoll_backend;
    if (strcmp(name, "poll") == 0)
        return &rx_poll_backend;
    return NULL;
}
