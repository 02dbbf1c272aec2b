/* server.c - the acceptor on the main loop, N sub-loops on their own threads, and a
 * clean stop on SIGINT/SIGTERM (delivered to the main loop through a signalfd). */
#include "reactor-internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

struct rx_server {
    struct rx_loop *main;
    struct rx_loop **subs;
    pthread_t *threads;
    int nsubs;
    int next_sub;                   /* round-robin cursor (main thread only) */
    unsigned long accepted;
    const struct rx_callbacks *cb;
    int listen_fd;
    struct rx_channel accept_ch;
    int signal_fd;
    struct rx_channel signal_ch;
};

/* The main loop's own connections (THREADS = 0) are handed over the same way, so
 * on_open always runs from the loop's task queue. */
static struct rx_loop *pick_loop(struct rx_server *srv)
{
    if (srv->nsubs == 0)
        return srv->main;
    struct rx_loop *loop = srv->subs[srv->next_sub];
    srv->next_sub = (srv->next_sub + 1) % srv->nsubs;
    return loop;
}

static void on_acceptable(void *ctx, int events)
{
    struct rx_server *srv = ctx;
    for (int i = 0; i < 64; i++) {      /* a burst, but let other events run too */
        int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            warning(errno, "accept4");  /* EMFILE and friends: try again next round */
            return;
        }
        struct rx_conn *c = rx_conn_new(fd, ++srv->accepted, srv->cb);
        rx_loop_post(pick_loop(srv), rx_conn_adopt, c);   /* c now belongs to that loop */
    }
}

static void on_signal(void *ctx, int events)
{
    struct rx_server *srv = ctx;
    struct signalfd_siginfo si;
    if (read(srv->signal_fd, &si, sizeof si) < 0 && errno != EAGAIN)
        fatal(errno, "read signalfd");
    rx_loop_stop(srv->main);
}

struct rx_server *rx_server_new(uint16_t port, int threads, const struct rx_backend *backend,
                                const struct rx_callbacks *cb)
{
    struct rx_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        fatal(errno, "calloc");
    srv->cb = cb;
    srv->nsubs = threads;

    /* Block the stop signals before any thread exists, so every thread inherits the
     * mask and only the signalfd sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int err = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (err)
        fatal(err, "pthread_sigmask");
    srv->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (srv->signal_fd < 0)
        fatal(errno, "signalfd");

    srv->main = rx_loop_new(0, backend);
    srv->subs = calloc((size_t)threads + 1, sizeof *srv->subs);
    srv->threads = calloc((size_t)threads + 1, sizeof *srv->threads);
    if (srv->subs == NULL || srv->threads == NULL)
        fatal(errno, "calloc");
    for (int i = 0; i < threads; i++)
        srv->subs[i] = rx_loop_new(i + 1, backend);

    srv->listen_fd = tcp_listen_or_die("0.0.0.0", port, 1024);
    if (make_nonblocking(srv->listen_fd) < 0)
        fatal(errno, "make_nonblocking");
    srv->accept_ch = (struct rx_channel){.fd = srv->listen_fd, .events = RX_READ,
                                         .cb = on_acceptable, .ctx = srv};
    srv->signal_ch = (struct rx_channel){.fd = srv->signal_fd, .events = RX_READ,
                                         .cb = on_signal, .ctx = srv};
    rx_loop_add_channel(srv->main, &srv->accept_ch);
    rx_loop_add_channel(srv->main, &srv->signal_ch);
    return srv;
}

static void *sub_main(void *arg)
{
    rx_loop_run(arg);
    return NULL;
}

int rx_server_run(struct rx_server *srv, void (*on_ready)(void))
{
    for (int i = 0; i < srv->nsubs; i++) {
        int err = pthread_create(&srv->threads[i], NULL, sub_main, srv->subs[i]);
        if (err)
            fatal(err, "pthread_create");
    }
    if (on_ready)
        on_ready();
    rx_loop_run(srv->main);

    /* Stop accepting, stop and join every sub-loop, then free: each loop closes the
     * connections it owns (their on_close runs in this thread, now the only one). */
    rx_loop_remove_channel(srv->main, &srv->accept_ch);
    rx_loop_remove_channel(srv->main, &srv->signal_ch);
    close(srv->listen_fd);
    close(srv->signal_fd);
    for (int i = 0; i < srv->nsubs; i++) {
        rx_loop_stop(srv->subs[i]);
        int err = pthread_join(srv->threads[i], NULL);
        if (err)
            fatal(err, "pthread_join");
        rx_loop_free(srv->subs[i]);
    }
    rx_loop_free(srv->main);
    free(srv->subs);
    free(srv->threads);
    free(srv);
    return 0;
}
