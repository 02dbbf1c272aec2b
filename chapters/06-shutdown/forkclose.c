/*
 * forkclose HOST PORT MODE - one connection, two processes.  After connecting we fork;
 * the child inherits the socket and keeps it until its standard input ends, then
 * writes one line to the server.  The parent close()s (MODE close) or
 * shutdown(SHUT_WR)s (MODE shutdown), and waits for the child.  See README.md,
 * "Contract".
 */
#include "common.h"

#include <signal.h>
#include <sys/wait.h>

static const char CHILD_LINE[] = "bye from the child\n";

/* The child: hold the socket until stdin ends, then try to use it. */
static void child_main(int fd)
{
    /* TODO: read stdin until EOF (ignore what it says), then write CHILD_LINE to
     * the socket.  If that write fails, report it with fatal(errno, "write") (exit
     * 1); otherwise close and exit 0.  Do not return from here. */
    TODO("the child");
}

/* The parent: give up the connection one way or the other, then print the line. */
static void let_go(int fd, const char *mode)
{
    /* TODO: "close": close(fd), print `parent called close`.
     *       "shutdown": shutdown the sending side, print `parent called shutdown`.
     * Watch what the server sees in each case while the child still runs. */
    TODO("close or shutdown");
}

/* Wait for the child and say how it ended. */
static void report_child(pid_t pid)
{
    /* TODO: waitpid(), then print `child exited with status N` or
     * `child killed by signal N` (WIFEXITED/WEXITSTATUS, WIFSIGNALED/WTERMSIG). */
    TODO("wait for the child");
}

int main(int argc, char **argv)
{
    if (argc != 4)
        fatal(0, "usage: %s HOST PORT close|shutdown", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);
    const char *mode = argv[3];
    if (strcmp(mode, "close") != 0 && strcmp(mode, "shutdown") != 0)
        fatal(0, "invalid mode '%s' (close or shutdown)", mode);

    /* TODO: the child's write after a shutdown fails; it must be able to report that
     * (README, "Writing to a peer that has gone: EPIPE and SIGPIPE").  Whatever you set
     * here is inherited across fork(). */

    int fd = tcp_connect_or_die(argv[1], port);

    /* TODO: fork().  The child runs child_main(fd); the parent let_go(), then
     * report_child(), then exits 0. */
    TODO("fork");
    (void)fd;
    (void)child_main;
    (void)let_go;
    (void)report_child;
    return 0;
}
