/*
 * uecho PORT - a correct alternative written differently from the reference:
 *   - a single-shot accept, submitted again after each completion (no multishot);
 *   - sends with MSG_WAITALL, so the kernel itself sends the rest after a short send:
 *     a send completes with every byte, or with an error;
 *   - the operation's kind travels in the low bits of user_data (a tagged pointer);
 *   - connections sit on a list; SIGTERM cancels each one's operations by descriptor;
 *   - descriptors are closed with close(2); CQEs are taken with peek and seen.
 */
#include "common.h"
#include "ring.h"

#include <sys/signalfd.h>

enum kind { K_ACCEPT, K_SIGNAL, K_RECV, K_SEND, K_CANCEL };
#define KIND_MASK 7ull

struct conn {
    struct conn *prev, *next;
    int fd;
    size_t len;
    char buf[8192];
} __attribute__((aligned(8)));

static struct io_uring ring;
static struct conn all = { &all, &all, -1, 0, {0} };   /* the list's head */
static int listen_fd, sig_fd, accept_armed, stopping;
static unsigned pending;        /* operations in flight */
static struct signalfd_siginfo info;

static void tag(struct io_uring_sqe *sqe, struct conn *c, enum kind k)
{
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | (uint64_t)k);
    pending++;
}

static void arm_accept(void)
{
    struct io_uring_sqe *sqe = ring_sqe(&ring);
    io_uring_prep_accept(sqe, listen_fd, NULL, NULL, SOCK_CLOEXEC);
    tag(sqe, NULL, K_ACCEPT);
    accept_armed = 1;
}

static void recv_on(struct conn *c)
{
    struct io_uring_sqe *sqe = ring_sqe(&ring);
    io_uring_prep_recv(sqe, c->fd, c->buf, sizeof(c->buf), 0);
    tag(sqe, c, K_RECV);
}

static void send_on(struct conn *c)
{
    struct io_uring_sqe *sqe = ring_sqe(&ring);
    io_uring_prep_send(sqe, c->fd, c->buf, c->len, MSG_WAITALL | MSG_NOSIGNAL);
    tag(sqe, c, K_SEND);
}

static void drop(struct conn *c)
{
    c->prev->next = c->next;
    c->next->prev = c->prev;
    if (close(c->fd) < 0)
        warning(errno, "close");
    free(c);
    if (!accept_armed && !stopping)
        arm_accept();           /* paused by EMFILE, or simply due again */
}

static void handle(uint64_t ud, int res)
{
    struct conn *c = (struct conn *)(uintptr_t)(ud & ~KIND_MASK);
    pending--;
    switch ((enum kind)(ud & KIND_MASK)) {
    case K_ACCEPT:
        accept_armed = 0;
        if (res >= 0 && !stopping) {
            struct conn *n = calloc(1, sizeof(*n));
            if (n == NULL)
                fatal(errno, "calloc");
            n->fd = res;
            n->next = all.next;
            n->prev = &all;
            all.next->prev = n;
            all.next = n;
            recv_on(n);
        } else if (res >= 0) {
            close(res);
        }
        if (res == -EMFILE || res == -ENFILE)
            return;             /* no re-arm until a connection is dropped */
        if (!stopping)
            arm_accept();
        return;
    case K_SIGNAL:
        stopping = 1;
        if (accept_armed) {
            struct io_uring_sqe *sqe = ring_sqe(&ring);
            io_uring_prep_cancel64(sqe, (uint64_t)K_ACCEPT, 0);
            tag(sqe, NULL, K_CANCEL);
        }
        for (struct conn *p = all.next; p != &all; p = p->next) {
            struct io_uring_sqe *sqe = ring_sqe(&ring);
            io_uring_prep_cancel_fd(sqe, p->fd, IORING_ASYNC_CANCEL_ALL);
            tag(sqe, NULL, K_CANCEL);
        }
        return;
    case K_CANCEL:
        return;
    case K_RECV:
        if (res > 0 && !stopping) {
            c->len = (size_t)res;
            send_on(c);
        } else {
            drop(c);
        }
        return;
    case K_SEND:
        if (res == (int)c->len && !stopping)
            recv_on(c);
        else
            drop(c);            /* with MSG_WAITALL, fewer bytes means an error */
        return;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s PORT", argv[0]);
    sig_fd = signals_to_fd_or_die();
    listen_fd = tcp_listen_or_die(NULL, parse_port_or_die(argv[1]), 2048);
    ring_init_or_die(&ring, 128);
    arm_accept();
    struct io_uring_sqe *sqe = ring_sqe(&ring);
    io_uring_prep_read(sqe, sig_fd, &info, sizeof(info), 0);
    tag(sqe, NULL, K_SIGNAL);
    printf("listening on %d\n", local_port(listen_fd));
    while (!stopping || pending > 0) {
        int rc = io_uring_submit_and_wait(&ring, 1);
        if (rc < 0 && rc != -EINTR)
            fatal(-rc, "io_uring_submit_and_wait");
        struct io_uring_cqe *cqe;
        while (io_uring_peek_cqe(&ring, &cqe) == 0) {
            uint64_t ud = io_uring_cqe_get_data64(cqe);
            int res = cqe->res;
            io_uring_cqe_seen(&ring, cqe);
            handle(ud, res);
        }
    }
    io_uring_queue_exit(&ring);
    printf("bye\n");
    return 0;
}
