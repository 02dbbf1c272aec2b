/* Self-test alternative: POSIX semaphores; the acceptor takes a free slot *before* accept(). */
#include "common.h"

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>

static int *ring;
static unsigned cap, in, out;
static sem_t free_slots, filled;
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;

static void handle(int fd)
{
    char buf[2048];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            char c = buf[i];
            if (c >= 'a' && c <= 'z')
                buf[i] = (char)('a' + (c - 'a' + 13) % 26);
            else if (c >= 'A' && c <= 'Z')
                buf[i] = (char)('A' + (c - 'A' + 13) % 26);
        }
        if (writen(fd, buf, (size_t)n) < 0)
            break;
    }
    close(fd);
}

static void *work(void *unused)
{
    (void)unused;
    for (;;) {
        while (sem_wait(&filled) < 0)
            ;
        pthread_mutex_lock(&ring_lock);
        int fd = ring[out];
        out = (out + 1) % cap;
        pthread_mutex_unlock(&ring_lock);
        sem_post(&free_slots);
        handle(fd);
    }
    return NULL;
}

static unsigned number(const char *what, const char *s, unsigned max)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *end != '\0' || *s == '-' || v < 1 || v > max)
        fatal(0, "invalid %s '%s' (1..%u)", what, s, max);
    return (unsigned)v;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        fatal(0, "usage: %s PORT THREADS QUEUE", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);
    unsigned threads = number("THREADS", argv[2], 256);
    cap = number("QUEUE", argv[3], 4096);
    signal(SIGPIPE, SIG_IGN);
    ring = malloc(cap * sizeof *ring);
    if (ring == NULL || sem_init(&free_slots, 0, cap) < 0 || sem_init(&filled, 0, 0) < 0)
        fatal(errno, "init");
    int lfd = tcp_listen_or_die(NULL, port, 64);
    for (unsigned i = 0; i < threads; i++) {
        pthread_t t;
        int err = pthread_create(&t, NULL, work, NULL);
        if (err)
            fatal(err, "pthread_create");
    }
    printf("listening on %d\n", local_port(lfd));
    for (;;) {
        while (sem_wait(&free_slots) < 0)       /* room first, then accept */
            ;
        int fd;
        while ((fd = accept(lfd, NULL, NULL)) < 0)
            if (errno != EINTR && errno != ECONNABORTED)
                fatal(errno, "accept");
        pthread_mutex_lock(&ring_lock);
        ring[in] = fd;
        in = (in + 1) % cap;
        pthread_mutex_unlock(&ring_lock);
        sem_post(&filled);
    }
}
