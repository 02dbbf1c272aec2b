/*
 * forkclose HOST PORT MODE - one connection, two processes.  After connecting we fork:
 * the child inherits the socket and keeps it.  The parent then either close()s its
 * descriptor (MODE close) or shutdown(SHUT_WR)s the connection (MODE shutdown), and
 * waits for the child.  The child waits for standard input to end, then writes one
 * line to the server and exits.
 *
 * close() drops one reference: no FIN while the child still holds the socket.
 * shutdown() acts on the connection itself: FIN now, and the child can no longer
 * write either.
 *
 * Reference solution for chapter 06.
 */
#include "common.h"

#include <signal.h>
#include <sys/wait.h>

static const char CHILD_LINE[] = "bye from the child\n";

/* The child: hold the socket until stdin ends, then try to use it. */
static void child_main(int fd)
{
    char buf[512];
    ssize_t n;

    while ((n = read(STDIN_FILENO, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno != EINTR)
            fatal(errno, "read stdin");
    }
    if (writen(fd, CHILD_LINE, sizeof(CHILD_LINE) - 1) < 0)
        fatal(errno, "write");
    if (close(fd) < 0)
        fatal(errno, "close");
    exit(0);
}

/* The parent: give up the connection one way or the other. */
static void let_go(int fd, const char *mode)
{
    /* WRONG: close() in both modes -- the child's reference keeps the connection open. */
    if (strcmp(mode, "close") == 0 || strcmp(mode, "shutdown") == 0) {
        if (close(fd) < 0)
            fatal(errno, "close");
        printf("parent called %s\n", mode);
    } else {
        if (shutdown(fd, SHUT_WR) < 0)
            fatal(errno, "shutdown");
        printf("parent called shutdown\n");
        if (close(fd) < 0)
            fatal(errno, "close");
    }
}

static void report_child(pid_t pid)
{
    int status;

    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            fatal(errno, "waitpid");
    }
    if (WIFEXITED(status))
        printf("child exited with status %d\n", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("child killed by signal %d\n", WTERMSIG(status));
}

int main(int argc, char **argv)
{
    if (argc != 4)
        fatal(0, "usage: %s HOST PORT close|shutdown", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);
    const char *mode = argv[3];
    if (strcmp(mode, "close") != 0 && strcmp(mode, "shutdown") != 0)
        fatal(0, "invalid mode '%s' (close or shutdown)", mode);

    /* Inherited by the child: its write after the shutdown must fail with EPIPE. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        fatal(errno, "signal");

    int fd = tcp_connect_or_die(argv[1], port);

    pid_t pid = fork();
    if (pid < 0)
        fatal(errno, "fork");
    if (pid == 0)
        child_main(fd);

    let_go(fd, mode);
    report_child(pid);
    return 0;
}
