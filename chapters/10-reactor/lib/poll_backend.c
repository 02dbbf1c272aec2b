/* poll_backend.c - readiness through poll(2): the interest set lives in our array and
 * is handed to the kernel on every call. */
#include "reactor-internal.h"

#include <errno.h>
#include <poll.h>

#include "common.h"

struct poll_state {
    struct pollfd *fds;
    struct rx_channel **chans;    /* chans[i] owns fds[i] */
    int n, cap;
};

static short to_poll(int events)
{
    return (short)(((events & RX_READ) ? POLLIN : 0) | ((events & RX_WRITE) ? POLLOUT : 0));
}

static void *poll_create(void)
{
    struct poll_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        fatal(errno, "calloc");
    return s;
}

static void poll_destroy(void *state)
{
    struct poll_state *s = state;
    free(s->fds);
    free(s->chans);
    free(s);
}

static int poll_add(void *state, struct rx_channel *ch)
{
    struct poll_state *s = state;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        struct pollfd *fds = realloc(s->fds, (size_t)cap * sizeof *fds);
        if (fds == NULL)
            fatal(errno, "realloc");
        s->fds = fds;
        struct rx_channel **chans = realloc(s->chans, (size_t)cap * sizeof *chans);
        if (chans == NULL)
            fatal(errno, "realloc");
        s->chans = chans;
        s->cap = cap;
    }
    s->fds[s->n] = (struct pollfd){.fd = ch->fd, .events = to_poll(ch->events)};
    s->chans[s->n] = ch;
    ch->slot = s->n++;
    return 0;
}

static int poll_modify(void *state, struct rx_channel *ch)
{
    struct poll_state *s = state;
    s->fds[ch->slot].events = to_poll(ch->events);
    return 0;
}

/* Move the last entry into the hole, so the array stays dense. */
static int poll_remove(void *state, struct rx_channel *ch)
{
    struct poll_state *s = state;
    int i = ch->slot, last = --s->n;
    if (i != last) {
        s->fds[i] = s->fds[last];
        s->chans[i] = s->chans[last];
        s->chans[i]->slot = i;
    }
    ch->slot = -1;
    return 0;
}

static int poll_wait(void *state, int timeout_ms, struct rx_ready *out, int max)
{
    struct poll_state *s = state;
    int n = poll(s->fds, (nfds_t)s->n, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    int k = 0;
    for (int i = 0; i < s->n && k < max && n > 0; i++) {
        short re = s->fds[i].revents;
        if (re == 0)
            continue;
        n--;
        int ev = 0;
        if (re & (POLLIN | POLLHUP | POLLERR))
            ev |= RX_READ;
        if (re & (POLLOUT | POLLHUP | POLLERR))
            ev |= RX_WRITE;
        out[k++] = (struct rx_ready){.ch = s->chans[i], .events = ev & (s->chans[i]->events | RX_READ)};
    }
    return k;
}

const struct rx_backend rx_poll_backend = {
    .name = "poll",
    .create = poll_create,
    .destroy = poll_destroy,
    .add = poll_add,
    .modify = poll_modify,
    .remove = poll_remove,
    .wait = poll_wait,
};
