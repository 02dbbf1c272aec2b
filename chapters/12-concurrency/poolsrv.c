/*
 * poolsrv PORT THREADS QUEUE - the rot13 service on a fixed pool of threads.
 *
 * THREADS workers are created at start and never more.  The main thread accepts
 * and puts each connection in a bounded queue of QUEUE slots; a free worker takes
 * it out and serves it to the end.  When the queue is full the main thread waits
 * for room, so further clients wait in the kernel's listen backlog.  See
 * README.md, "Contract".
 *
 * Your part: fd_queue_push, fd_queue_pop, worker and start_workers.  serve() and
 * fd_queue_init are written for you.
 */
#include "common.h"

#include <pthread.h>
#include <signal.h>

#define BUFSIZE 4096
#define MAX_THREADS 256
#define MAX_QUEUE 4096

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

static void serve(int conn)
{
    char buf[BUFSIZE];
    for (;;) {
        ssize_t n = read(conn, buf, sizeof buf);
        if (n == 0)
            return;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            warning(errno, "read");
            return;
        }
        rot13(buf, (size_t)n);
        if (writen(conn, buf, (size_t)n) < 0) {
            warning(errno, "write");
            return;
        }
    }
}

/* ---- a bounded FIFO of connected fds ------------------------------------ */

struct fd_queue {
    int *slots;
    size_t cap;                 /* QUEUE */
    size_t head;                /* next fd to take */
    size_t count;               /* fds waiting */
    pthread_mutex_t lock;
    pthread_cond_t not_empty;   /* workers wait here */
    pthread_cond_t not_full;    /* the acceptor waits here */
};

static void fd_queue_init(struct fd_queue *q, size_t cap)
{
    q->slots = calloc(cap, sizeof *q->slots);
    if (q->slots == NULL)
        fatal(errno, "calloc");
    q->cap = cap;
    q->head = 0;
    q->count = 0;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
}

/* Append fd, waiting while the queue is full. */
static void fd_queue_push(struct fd_queue *q, int fd)
{
    /* TODO: under the lock, wait while the queue is full (that is what bounds the
     * number of clients accepted but not served), store fd after the last one
     * (the slots are a ring: wrap around), and wake one waiting worker. */
    (void)q;
    (void)fd;
    TODO("fd_queue_push");
}

/* Take the oldest fd, waiting while the queue is empty. */
static int fd_queue_pop(struct fd_queue *q)
{
    /* TODO: under the lock, wait while the queue is empty, take the oldest fd,
     * and wake the acceptor in case it waits for room.  Why "while" and not "if"
     * around pthread_cond_wait? */
    (void)q;
    TODO("fd_queue_pop");
}

/* ---- the pool ------------------------------------------------------------ */

static void *worker(void *arg)
{
    /* TODO: forever: take a connection from the queue, serve it to its end,
     * close it. */
    (void)arg;
    (void)serve;
    TODO("worker loop");
    return NULL;
}

static void start_workers(struct fd_queue *q, long nthreads)
{
    /* TODO: create the nthreads workers, once: no thread is ever created after
     * this.  Each gets the queue as its argument. */
    (void)q;
    (void)nthreads;
    (void)worker;
    TODO("start the worker threads");
}

static long parse_count_or_die(const char *what, const char *text, long max)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 1 || v > max)
        fatal(0, "invalid %s '%s' (1..%ld)", what, text, max);
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        fatal(0, "usage: %s PORT THREADS QUEUE", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);
    long nthreads = parse_count_or_die("THREADS", argv[2], MAX_THREADS);
    long qsize = parse_count_or_die("QUEUE", argv[3], MAX_QUEUE);

    signal(SIGPIPE, SIG_IGN);

    static struct fd_queue queue;
    fd_queue_init(&queue, (size_t)qsize);

    int listen_fd = tcp_listen_or_die(NULL, port, 128);
    start_workers(&queue, nthreads);
    printf("listening on %d\n", local_port(listen_fd));

    for (;;) {
        int conn = accept(listen_fd, NULL, NULL);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fatal(errno, "accept");
        }
        fd_queue_push(&queue, conn);
    }
}
