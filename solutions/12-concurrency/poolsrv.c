/*
 * poolsrv PORT THREADS QUEUE - the rot13 service on a fixed pool of threads.
 *
 * THREADS workers are created at start and never more.  The main thread accepts
 * and puts each connection in a bounded queue of QUEUE slots; a free worker takes
 * it out and serves it to the end.  When the queue is full the main thread waits
 * for room, so further clients wait in the kernel's listen backlog.  See
 * README.md, "Contract".
 *
 * Reference solution for chapter 12.
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
    pthread_mutex_lock(&q->lock);
    while (q->count == q->cap)
        pthread_cond_wait(&q->not_full, &q->lock);
    q->slots[(q->head + q->count) % q->cap] = fd;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
}

/* Take the oldest fd, waiting while the queue is empty. */
static int fd_queue_pop(struct fd_queue *q)
{
    pthread_mutex_lock(&q->lock);
    while (q->count == 0)
        pthread_cond_wait(&q->not_empty, &q->lock);
    int fd = q->slots[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->lock);
    return fd;
}

/* ---- the pool ------------------------------------------------------------ */

static void *worker(void *arg)
{
    struct fd_queue *q = arg;
    for (;;) {
        int conn = fd_queue_pop(q);
        serve(conn);
        if (close(conn) < 0)
            warning(errno, "close");
    }
    return NULL;
}

static void start_workers(struct fd_queue *q, long nthreads)
{
    for (long i = 0; i < nthreads; i++) {
        pthread_t tid;
        int err = pthread_create(&tid, NULL, worker, q);
        if (err != 0)
            fatal(err, "pthread_create");
        pthread_detach(tid);
    }
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
