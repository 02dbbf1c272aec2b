/*
 * forksrv PORT - the rot13 service, one child process per connection.
 *
 * The parent only accepts; each connection is served by a child created with
 * fork().  Exited children are reaped by a SIGCHLD handler.  See README.md,
 * "Contract".
 *
 * Reference solution for chapter 12.
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
    int saved = errno;                  /* waitpid may change errno under main's feet */
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    errno = saved;
}

static void reap_children_on_sigchld(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigchld;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;           /* accept() resumes instead of failing with EINTR */
    if (sigaction(SIGCHLD, &sa, NULL) < 0)
        fatal(errno, "sigaction");
}

static void spawn_child(int listen_fd, int conn)
{
    pid_t pid = fork();
    if (pid < 0) {
        warning(errno, "fork");         /* this client is dropped; the server goes on */
        return;
    }
    if (pid == 0) {
        close(listen_fd);               /* the child never accepts */
        serve(conn);
        close(conn);
        _exit(0);
    }
    /* parent: the caller closes its copy of conn */
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
        if (close(conn) < 0)            /* the child has its own copy */
            warning(errno, "close");
    }
}
