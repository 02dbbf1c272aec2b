/*
 * A correct pair written differently from the solution: SOCK_SEQPACKET (one message
 * per line, so no line reader), fgets/recv/send, and the parent reaps the child with
 * wait().
 */
#include "common.h"

#include <sys/wait.h>

int main(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0)
        fatal(errno, "socketpair");
    pid_t pid = fork();
    if (pid < 0)
        fatal(errno, "fork");
    if (pid == 0) {
        close(sv[0]);
        char msg[1024], out[1100];
        ssize_t n;
        while ((n = recv(sv[1], msg, sizeof(msg) - 1, 0)) > 0) {
            msg[n] = '\0';
            int len = snprintf(out, sizeof(out), "Hi, %s", msg);
            if (send(sv[1], out, (size_t)len, MSG_NOSIGNAL) < 0)
                _exit(1);
        }
        _exit(n == 0 ? 0 : 1);
    }
    close(sv[1]);
    printf("child %d\n", (int)pid);

    char line[1024], reply[1100];
    while (fgets(line, sizeof(line), stdin)) {
        line[strcspn(line, "\n")] = '\0';
        if (send(sv[0], line, strlen(line), MSG_NOSIGNAL) < 0)
            fatal(errno, "send");
        ssize_t n = recv(sv[0], reply, sizeof(reply) - 1, 0);
        if (n <= 0)
            fatal(n ? errno : 0, "recv");
        reply[n] = '\0';
        printf("%s\n", reply);
    }
    shutdown(sv[0], SHUT_WR);
    int status = 0;
    if (wait(&status) != pid)
        fatal(errno, "wait");
    printf("child exited with status %d\n", WEXITSTATUS(status));
    return 0;
}
