/* A made-up echo step with one construct for each mutation operator (tests/test_mutate.py). */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define LIMIT 64

int echo_once(int fd, unsigned short port, int status)
{
    struct sockaddr_in a;
    char buf[128];
    ssize_t n;

    memset(&a, 0, sizeof(a));
    a.sin_port = htons(port);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (s < 0)
        return -1;
    if (WIFEXITED(status))
        signal(SIGPIPE, SIG_IGN);
    if (listen(s, 16) < 0)
        return -1;
    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        if (n > LIMIT)
            return -1;
        char copy[LIMIT];
        memcpy(copy, buf, (size_t)n);
        printf("%.*s\n", (int)n, copy);
        send(fd, copy, (size_t)n, MSG_NOSIGNAL);
    }
    shutdown(fd, SHUT_WR);
    close(s);
    return 0;
}
