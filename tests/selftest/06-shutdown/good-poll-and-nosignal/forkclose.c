/* A correct forkclose written differently: only the child ignores SIGPIPE (through
 * sigaction), and the parent reaps it with wait(). */
#include "common.h"

#include <signal.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
    if (argc != 4)
        fatal(0, "usage: %s HOST PORT close|shutdown", argv[0]);
    if (strcmp(argv[3], "close") && strcmp(argv[3], "shutdown"))
        fatal(0, "invalid mode '%s' (close or shutdown)", argv[3]);
    int fd = tcp_connect_or_die(argv[1], parse_port_or_die(argv[2]));
    int by_close = strcmp(argv[3], "close") == 0;

    switch (fork()) {
    case -1:
        fatal(errno, "fork");
    case 0: {
        struct sigaction sa = { .sa_handler = SIG_IGN };
        sigaction(SIGPIPE, &sa, NULL);
        char c;
        while (read(STDIN_FILENO, &c, 1) > 0)
            ;
        const char msg[] = "bye from the child\n";
        if (write(fd, msg, sizeof(msg) - 1) < 0)
            fatal(errno, "write");
        _exit(0);
    }
    }
    if (by_close ? close(fd) : shutdown(fd, SHUT_WR))
        fatal(errno, by_close ? "close" : "shutdown");
    printf("parent called %s\n", argv[3]);
    int status;
    if (wait(&status) < 0)
        fatal(errno, "wait");
    if (WIFSIGNALED(status))
        printf("child killed by signal %d\n", WTERMSIG(status));
    else
        printf("child exited with status %d\n", WEXITSTATUS(status));
    return 0;
}
