/* loop.c - one thread's event loop: wait, dispatch, run timers, run posted tasks,
 * free the connections closed during this round. */
#include "reactor-internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

/* The skeleton defines helpers before anything calls them: that is no error here. */
#pragma GCC diagnostic ignored "-Wunused-function"

#define READY_MAX 256

struct rx_task {
    rx_task_fn fn;
    void *arg;
    struct rx_task *next;
};

struct rx_timer {
    rx_timer_id id;
    uint64_t due_ms;
    rx_timer_fn fn;                 /* a loop timer ... */
    rx_conn_timer_fn conn_fn;       /* ... or a connection's: cancelled when it closes */
    struct rx_conn *conn;
    rx_done_fn done;                /* the finalizer: called once, when the timer is over */
    void *arg;
    struct rx_timer *next;          /* sorted by due_ms, earliest first */
};

/* Ids are unique in the process (loops on several threads take them): an id given to
 * the wrong loop's rx_timer_cancel finds nothing there instead of another timer. */
static atomic_uint_fast64_t next_timer_id = 1;

struct rx_loop {
    int id;
    const struct rx_backend *backend;
    void *backend_state;
    atomic_bool stopping;

    /* Cross-thread wakeup: other threads append a task under `lock`, then write to
     * the eventfd, which this loop watches like any other fd. */
    int wake_fd;
    struct rx_channel wake_ch;
    pthread_mutex_t lock;
    struct rx_task *tasks, *tasks_tail;

    struct rx_timer *timers;
    struct rx_conn *live;           /* connections this loop owns */
    struct rx_conn *dead;           /* closed this round, freed at its end */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The eventfd is readable: reset its counter.  The tasks run after dispatch. */
static void on_wakeup(void *ctx, int events)
{
    /* The eventfd became readable because some thread posted a task. Reading it resets
     * its counter (or it would stay readable forever); the tasks run after dispatch. */
    TODO("read the 8-byte counter from loop->wake_fd (EAGAIN is fine)");
}

static void wakeup(struct rx_loop *loop)
{
    /* Make the loop's poll/epoll_wait return: the eventfd is in its interest set. */
    TODO("write an 8-byte 1 to loop->wake_fd (EAGAIN is fine: it is readable already)");
}

struct rx_loop *rx_loop_new(int id, const struct rx_backend *backend)
{
    struct rx_loop *loop = calloc(1, sizeof *loop);
    if (loop == NULL)
        fatal(errno, "calloc");
    loop->id = id;
    loop->backend = backend;
    loop->backend_state = backend->create();
    atomic_init(&loop->stopping, false);
    int err = pthread_mutex_init(&loop->lock, NULL);
    if (err)
        fatal(err, "pthread_mutex_init");
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wake_fd < 0)
        fatal(errno, "eventfd");
    loop->wake_ch = (struct rx_channel){.fd = loop->wake_fd, .events = RX_READ,
                                        .cb = on_wakeup, .ctx = loop};
    rx_loop_add_channel(loop, &loop->wake_ch);
    return loop;
}

int rx_loop_id(const struct rx_loop *loop)
{
    return loop->id;
}

void rx_loop_add_channel(struct rx_loop *loop, struct rx_channel *ch)
{
    if (loop->backend->add(loop->backend_state, ch) < 0)
        fatal(errno, "%s add fd %d", loop->backend->name, ch->fd);
}

void rx_loop_update_channel(struct rx_loop *loop, struct rx_channel *ch)
{
    if (loop->backend->modify(loop->backend_state, ch) < 0)
        fatal(errno, "%s modify fd %d", loop->backend->name, ch->fd);
}

void rx_loop_remove_channel(struct rx_loop *loop, struct rx_channel *ch)
{
    if (loop->backend->remove(loop->backend_state, ch) < 0)
        fatal(errno, "%s remove fd %d", loop->backend->name, ch->fd);
}

void rx_loop_post(struct rx_loop *loop, rx_task_fn fn, void *arg)
{
    /* Called from any thread (the acceptor hands every new connection over this way).
     * The queue is shared: change it only under loop->lock.  Then wake the loop, or it
     * may sleep in its wait forever with the task queued (a lost wakeup). */
    TODO("append a malloc'd rx_task {fn, arg} to loop->tasks under the lock, then wakeup(loop)");
}

void rx_loop_stop(struct rx_loop *loop)
{
    atomic_store(&loop->stopping, true);
    wakeup(loop);
}

/* Take the whole task list under the lock, run it outside the lock (a task may post). */
static void run_tasks(struct rx_loop *loop)
{
    pthread_mutex_lock(&loop->lock);
    struct rx_task *t = loop->tasks;
    loop->tasks = loop->tasks_tail = NULL;
    pthread_mutex_unlock(&loop->lock);
    while (t) {
        struct rx_task *next = t->next;
        t->fn(loop, t->arg);
        free(t);
        t = next;
    }
}

static void insert_timer(struct rx_loop *loop, struct rx_timer *t)
{
    struct rx_timer **p = &loop->timers;
    while (*p && (*p)->due_ms <= t->due_ms)
        p = &(*p)->next;
    t->next = *p;
    *p = t;
}

static struct rx_timer *new_timer(unsigned ms, rx_done_fn done, void *arg)
{
    struct rx_timer *t = calloc(1, sizeof *t);
    if (t == NULL)
        fatal(errno, "calloc");
    t->id = atomic_fetch_add(&next_timer_id, 1);
    t->due_ms = now_ms() + ms;
    t->done = done;
    t->arg = arg;
    return t;
}

/* The timer is over (it ran, or it was cancelled): its finalizer, then its memory. */
static void finish_timer(struct rx_timer *t)
{
    if (t->done)
        t->done(t->arg);
    free(t);
}

rx_timer_id rx_timer_start(struct rx_loop *loop, unsigned ms, rx_timer_fn fn, rx_done_fn done,
                           void *arg)
{
    struct rx_timer *t = new_timer(ms, done, arg);
    t->fn = fn;
    insert_timer(loop, t);
    return t->id;
}

rx_timer_id rx_conn_timer(struct rx_conn *c, unsigned ms, rx_conn_timer_fn fn, rx_done_fn done,
                          void *arg)
{
    if (c->closed) {                /* it would outlive its connection */
        if (done)
            done(arg);
        return 0;
    }
    struct rx_timer *t = new_timer(ms, done, arg);
    t->conn_fn = fn;
    t->conn = c;
    insert_timer(c->loop, t);
    return t->id;
}

int rx_timer_cancel(struct rx_loop *loop, rx_timer_id id)
{
    /* Like rx_loop_cancel_conn_timers below, for one timer: find the id in loop->timers,
     * unlink it and finish_timer it (its `done` runs, exactly once).  Not found -- it ran
     * already, was cancelled, or is another loop's --: -1, and nothing else happens. */
    TODO("find the pending timer by id, unlink it, finish it; -1 if there is none");
}

void rx_loop_cancel_conn_timers(struct rx_loop *loop, struct rx_conn *c)
{
    struct rx_timer **p = &loop->timers;
    while (*p) {
        struct rx_timer *t = *p;
        if (t->conn == c) {
            *p = t->next;
            finish_timer(t);
        } else {
            p = &t->next;
        }
    }
}

static int next_timeout(const struct rx_loop *loop)
{
    /* No timer: wait forever (-1).  Otherwise the milliseconds until the earliest one
     * (loop->timers is sorted), 0 if it is already due. */
    TODO("the wait timeout from the earliest timer");
}

static void run_timers(struct rx_loop *loop)
{
    uint64_t now = now_ms();
    while (loop->timers && loop->timers->due_ms <= now) {
        struct rx_timer *t = loop->timers;
        loop->timers = t->next;
        if (t->conn)
            t->conn_fn(t->conn, t->arg);
        else
            t->fn(loop, t->arg);
        finish_timer(t);
    }
}

void rx_loop_link_conn(struct rx_loop *loop, struct rx_conn *c)
{
    c->loop = loop;
    c->prev = NULL;
    c->next = loop->live;
    if (loop->live)
        loop->live->prev = c;
    loop->live = c;
}

void rx_loop_bury_conn(struct rx_loop *loop, struct rx_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        loop->live = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = NULL;
    c->next = loop->dead;
    loop->dead = c;
}

static void free_dead(struct rx_loop *loop)
{
    while (loop->dead) {
        struct rx_conn *c = loop->dead;
        loop->dead = c->next;
        rx_conn_free(c);
    }
}

void rx_loop_run(struct rx_loop *loop)
{
    struct rx_ready ready[READY_MAX];
    while (!atomic_load(&loop->stopping)) {
        int n = loop->backend->wait(loop->backend_state, next_timeout(loop), ready, READY_MAX);
        if (n < 0)
            fatal(errno, "%s wait", loop->backend->name);
        for (int i = 0; i < n; i++) {
            struct rx_channel *ch = ready[i].ch;
            if (ch->fd >= 0)            /* closed earlier in this round: skip */
                ch->cb(ch->ctx, ready[i].events);
        }
        run_timers(loop);
        run_tasks(loop);
        free_dead(loop);
    }
}

void rx_loop_free(struct rx_loop *loop)
{
    run_tasks(loop);                     /* connections still in flight get adopted, then closed */
    while (loop->live)
        rx_conn_close(loop->live);
    free_dead(loop);
    while (loop->timers) {
        struct rx_timer *t = loop->timers;
        loop->timers = t->next;
        finish_timer(t);
    }
    rx_loop_remove_channel(loop, &loop->wake_ch);
    close(loop->wake_fd);
    loop->backend->destroy(loop->backend_state);
    pthread_mutex_destroy(&loop->lock);
    free(loop);
}
