/*
 * forksrv PORT - the rot13 service, one child process per connection.
 *
 * The parent only accepts; each connection is served by a child created with
 * fork().  Exited children are reaped by a SIGCHLD handler.  See README.md,
 * "Contract".
 *
 * Your part: reap_children_on_sigchld, on_sigchld and spawn_child.  serve() is
 * written for you: the service is not the lesson, the process model is.
 */
#include "common.h"

#include <signal.h>
#include <sys/wait.h>

#define BUFSIZE 4096

/* Letters rotated by 13 places; every other byte unchanged. */
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

/* Transform everything the client sends until it closes its side. */
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

/*
 * Several children may exit before the handler runs, and a pending SIGCHLD is
 * delivered once however many there were: reap until none is left.
 */
static void on_sigchld(int sig)
{
    (void)sig;
    /* TODO: collect the exit status of every child that has exited, without ever
     * blocking (some children are still serving clients).  Remember that one
     * SIGCHLD can stand for several exits.  waitpid() may change errno, which the
     * code interrupted by this handler may be about to look at: keep it intact. */
}

static void reap_children_on_sigchld(void)
{
    /* TODO: install on_sigchld for SIGCHLD with sigaction().  Decide what a
     * system call that the signal interrupts (the parent's accept()) should do:
     * fail with EINTR, or resume (SA_RESTART)?  Either way the loop in main must
     * survive it. */
    (void)on_sigchld;
    TODO("install the SIGCHLD handler");
}

static void spawn_child(int listen_fd, int conn)
{
    /* TODO: fork().  The child owns the client: it does not need the listener,
     * serves the connection to its end, closes it and exits (with _exit: it must
     * never return into the parent's accept loop).  The parent goes back to
     * accepting at once.  A failed fork drops this client, not the server. */
    (void)listen_fd;
    (void)conn;
    (void)serve;
    TODO("fork a child to serve the connection");
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);

    signal(SIGPIPE, SIG_IGN);
    reap_children_on_sigchld();

    int listen_fd = tcp_listen_or_die(NULL, port, 128);
    printf("listening on %d\n", local_port(listen_fd));

    for (;;) {
        int conn = accept(listen_fd, NULL, NULL);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fatal(errno, "accept");
        }
        spawn_child(listen_fd, conn);
        /* TODO: the parent's copy of conn -- what must happen to it, and why does the
         * client never see EOF if you forget? */
    }
}
