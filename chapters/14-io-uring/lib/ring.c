/*
 * ring.c - io_uring helpers shared by chapter 14's programs (given, complete).
 * See ring.h.
 */
#include "common.h"
#include "ring.h"

#include <signal.h>
#include <sys/signalfd.h>

void ring_init_or_die(struct io_uring *ring, unsigned entries)
{
    int rc = io_uring_queue_init(entries, ring, 0);     /* liburing returns -errno */
    if (rc == -ENOSYS || rc == -EPERM)
        fatal(-rc, "io_uring_queue_init: io_uring is not available here (a kernel without it, "
                   "sysctl kernel.io_uring_disabled, or a container's seccomp filter); "
                   "the course VM has it");
    if (rc < 0)
        fatal(-rc, "io_uring_queue_init");
}

struct io_uring_sqe *ring_sqe(struct io_uring *ring)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    while (sqe == NULL) {
        /* The submission queue is full: hand what is queued to the kernel. */
        int rc = io_uring_submit(ring);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
            fatal(-rc, "io_uring_submit");
        sqe = io_uring_get_sqe(ring);
    }
    return sqe;
}

int signals_to_fd_or_die(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    /* Blocked, the signals stay pending instead of killing us; the signalfd reports them. */
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        fatal(errno, "sigprocmask");
    /* blocking: io_uring itself waits for it (a non-blocking fd would make the read
     * complete at once with -EAGAIN) */
    int fd = signalfd(-1, &set, SFD_CLOEXEC);
    if (fd < 0)
        fatal(errno, "signalfd");
    return fd;
}
