/* Self-test alternative: malloc'ed argument, threads created detached, MSG_NOSIGNAL. */
#include "common.h"

#include <pthread.h>

static void *client_main(void *arg)
{
    int fd = *(int *)arg;
    free(arg);
    char buf[512];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EINTR))
            break;
        if (n < 0)
            continue;
        for (ssize_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)buf[i];
            if ((c | 32) >= 'a' && (c | 32) <= 'z')
                buf[i] = (char)((c | 32) <= 'm' ? c + 13 : c - 13);
        }
        ssize_t off = 0;
        while (off < n) {
            ssize_t w = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                goto out;
            off += w;
        }
    }
out:
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s PORT", argv[0]);
    int lfd = tcp_listen_or_die(NULL, parse_port_or_die(argv[1]), 64);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    printf("listening on %d\n", local_port(lfd));
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fatal(errno, "accept");
        }
        int *arg = malloc(sizeof *arg);
        if (arg)
            *arg = fd;      /* the thread owns (and frees) its own copy */
        pthread_t tid;
        int err = arg ? pthread_create(&tid, &attr, client_main, arg) : ENOMEM;
        if (err != 0) {
            warning(err, "pthread_create");
            free(arg);
            close(fd);
        }
    }
}
