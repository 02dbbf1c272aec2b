/* Wrong on purpose (see expect.json): the child keeps both ends of the pair open */
/*
 * pair - a parent and its child talk through socketpair(): the parent sends each stdin
 * line to the child, the child answers "Hi, <line>", the parent prints the answer.
 *
 * Reference solution for chapter 04.
 */
#include "common.h"

#include <signal.h>
#include <sys/wait.h>

/* The child: answer each line until the parent closes its end. */
static void child(int fd)
{
    struct line_reader lr;
    char line[1024];
    char reply[sizeof(line) + 8];

    line_reader_init(&lr, fd);
    ssize_t n;
    while ((n = read_line(&lr, line, sizeof(line))) > 0) {
        line[strcspn(line, "\n")] = '\0';
        int len = snprintf(reply, sizeof(reply), "Hi, %s\n", line);
        if (writen(fd, reply, (size_t)len) < 0)
            fatal(errno, "child: write");
    }
    if (n < 0)
        fatal(errno, "child: read");
    _exit(0);       /* not exit(): the parent's stdio buffers are not ours to flush */
}

/* The parent: stdin lines to the child, its answers to stdout. */
static void parent(int fd)
{
    struct line_reader lr;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    char reply[2048];

    line_reader_init(&lr, fd);
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (line[n - 1] != '\n')
            line[n++] = '\n';
        if (writen(fd, line, (size_t)n) < 0)
            fatal(errno, "write");
        ssize_t got = read_line(&lr, reply, sizeof(reply));
        if (got < 0)
            fatal(errno, "read");
        if (got == 0)
            fatal(0, "the child closed its end");
        reply[strcspn(reply, "\n")] = '\0';
        printf("%s\n", reply);
    }
    free(line);
}

int main(int argc, char **argv)
{
    if (argc != 1)
        fatal(0, "usage: %s", argv[0]);
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        fatal(errno, "signal");

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        fatal(errno, "socketpair");

    fflush(stdout);                 /* nothing buffered may be printed twice */
    pid_t pid = fork();
    if (pid < 0)
        fatal(errno, "fork");
    if (pid == 0) {
        /* wrong: the child keeps sv[0] open, so its own copy keeps the pair alive */
        child(sv[1]);
    }
    close(sv[1]);
    printf("child %ld\n", (long)pid);

    parent(sv[0]);
    close(sv[0]);                   /* the child's read returns 0: it ends */

    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            fatal(errno, "waitpid");
    if (WIFEXITED(status))
        printf("child exited with status %d\n", WEXITSTATUS(status));
    else
        printf("child killed by signal %d\n", WTERMSIG(status));
    return 0;
}
