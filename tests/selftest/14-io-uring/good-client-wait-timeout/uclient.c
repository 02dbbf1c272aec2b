/*
 * uclient HOST PORT TIMEOUT_MS MESSAGE... - a correct alternative written differently
 * from the reference: no linked timeout.  It waits for completions with
 * io_uring_wait_cqe_timeout; when TIMEOUT_MS pass with the recv still pending, it cancels
 * the recv itself and waits for that to complete.  Sends are plain blocking send(2)s;
 * replies are read one recv at a time into a line buffer.
 */
#include "common.h"
#include "ring.h"

#include <sys/signalfd.h>

#define UD_SIGNAL 1
#define UD_RECV 2
#define UD_CANCEL 3

static struct io_uring ring;
static struct signalfd_siginfo info;
static char line[65536];        /* the Contract's longest reply line */
static size_t have;

static void bye(int fd)
{
    printf("interrupted\n");
    close(fd);
    io_uring_queue_exit(&ring);
    exit(0);
}

/* One recv; returns its result, or exits on SIGTERM or a timeout. */
static int recv_once(int fd, long ms)
{
    struct io_uring_sqe *sqe = ring_sqe(&ring);
    io_uring_prep_recv(sqe, fd, line + have, sizeof(line) - have, 0);
    io_uring_sqe_set_data64(sqe, UD_RECV);
    int rc = io_uring_submit(&ring);
    if (rc < 0)
        fatal(-rc, "io_uring_submit");
    struct __kernel_timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
    int cancelled = 0, result = 0, got_recv = 0, interrupted = 0;
    while (!got_recv) {
        struct io_uring_cqe *cqe;
        rc = io_uring_wait_cqe_timeout(&ring, &cqe, cancelled ? NULL : &ts);
        if (rc == -ETIME && !cancelled) {
            sqe = ring_sqe(&ring);
            io_uring_prep_cancel64(sqe, UD_RECV, 0);
            io_uring_sqe_set_data64(sqe, UD_CANCEL);
            io_uring_submit(&ring);
            cancelled = 1;
            continue;
        }
        if (rc == -EINTR || rc == -ETIME)
            continue;
        if (rc < 0)
            fatal(-rc, "io_uring_wait_cqe_timeout");
        uint64_t ud = io_uring_cqe_get_data64(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&ring, cqe);
        if (ud == UD_SIGNAL && !cancelled) {
            interrupted = cancelled = 1;
            sqe = ring_sqe(&ring);
            io_uring_prep_cancel64(sqe, UD_RECV, 0);
            io_uring_sqe_set_data64(sqe, UD_CANCEL);
            io_uring_submit(&ring);
        } else if (ud == UD_RECV) {
            got_recv = 1;
            result = res;
        }
    }
    if (interrupted)
        bye(fd);
    if (result == -ECANCELED)
        fatal(0, "timeout: nothing for %ld ms", ms);
    return result;
}

int main(int argc, char **argv)
{
    if (argc < 5)
        fatal(0, "usage: %s HOST PORT TIMEOUT_MS MESSAGE...", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);
    char *end;
    errno = 0;
    long ms = strtol(argv[3], &end, 10);
    if (errno != 0 || end == argv[3] || *end != '\0' || ms <= 0 || ms > 60 * 60 * 1000)
        fatal(0, "invalid timeout '%s'", argv[3]);
    int sfd = signals_to_fd_or_die();
    int fd = tcp_connect_or_die(argv[1], port);
    ring_init_or_die(&ring, 16);
    struct io_uring_sqe *sqe = ring_sqe(&ring);
    io_uring_prep_read(sqe, sfd, &info, sizeof(info), 0);
    io_uring_sqe_set_data64(sqe, UD_SIGNAL);
    for (int i = 4; i < argc; i++) {
        char msg[4100];
        int n = snprintf(msg, sizeof(msg), "%s\n", argv[i]);
        if (n < 0 || (size_t)n >= sizeof(msg))
            fatal(0, "message too long");
        if (send(fd, msg, (size_t)n, MSG_NOSIGNAL) != n)   /* blocking: all of it, or an error */
            fatal(errno, "send");
        char *nl;
        while ((nl = memchr(line, '\n', have)) == NULL) {
            int r = recv_once(fd, ms);
            if (r == 0)
                fatal(0, "server closed the connection");
            if (r < 0)
                fatal(-r, "recv");
            have += (size_t)r;
            if (have == sizeof(line))
                fatal(0, "reply too long");
        }
        size_t len = (size_t)(nl - line) + 1;
        fwrite(line, 1, len, stdout);
        memmove(line, line + len, have - len);
        have -= len;
    }
    close(fd);
    io_uring_queue_exit(&ring);
    return 0;
}
