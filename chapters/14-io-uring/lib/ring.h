/*
 * ring.h - the few io_uring helpers both programs of chapter 14 share (given, complete).
 *
 * liburing (Debian's liburing-dev) wraps the three system calls -- io_uring_setup,
 * io_uring_enter, io_uring_register -- and the two shared rings: you fill a submission
 * queue entry (SQE) with io_uring_prep_*(), submit, and later read a completion queue
 * entry (CQE) carrying the operation's result and the user_data you gave it.
 * These helpers add the parts every program repeats: setting a ring up with a message
 * that says what to do when io_uring is not available, finding a free SQE when the
 * submission queue is full, and turning SIGINT/SIGTERM into something a ring can read.
 */
#ifndef SOCKLAB_RING_H
#define SOCKLAB_RING_H

#include <liburing.h>

/*
 * ring_init_or_die - io_uring_queue_init(entries, ring, 0), or exit(1) through fatal().
 * ENOSYS and EPERM get a message saying that io_uring is not available on this machine
 * (a kernel without it, sysctl kernel.io_uring_disabled, a container's seccomp filter)
 * and that the course VM has it.
 */
void ring_init_or_die(struct io_uring *ring, unsigned entries);

/*
 * ring_sqe - the next free submission queue entry, never NULL.  When the submission
 * queue is full, what is queued is submitted first (one io_uring_enter) to make room;
 * otherwise nothing enters the kernel here: SQEs pile up until you submit them all at
 * once.  Exits through fatal() if that submit fails.
 */
struct io_uring_sqe *ring_sqe(struct io_uring *ring);

/*
 * signals_to_fd_or_die - block SIGINT and SIGTERM in this thread and return a signalfd
 * (close-on-exec) that reports them: a read of sizeof(struct
 * signalfd_siginfo) bytes from it, submitted to the ring, completes when one arrives.
 * Call it before any other thread exists, so every thread inherits the blocked mask.
 */
int signals_to_fd_or_die(void);

#endif /* SOCKLAB_RING_H */
