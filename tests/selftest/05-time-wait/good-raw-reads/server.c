/*
 * Self-test: a correct server written differently from the solution -- raw read()
 * of the request byte by byte, one malloc'd reply written with send(), recv() until
 * 0 in wait mode, gettimeofday for timing, tcp_listen_or_die when reuse is wanted.
 */
#include "common.h"

#include <signal.h>

#include <sys/time.h>

static double seconds_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec + tv.tv_usec / 1e6;
}

static int open_listener(uint16_t port, int reuse)
{
    if (reuse)
        return tcp_listen_or_die(NULL, port, 8);
    struct sockaddr_storage ss;
    int len = fill_sockaddr(&ss, "0.0.0.0", port);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    if (bind(fd, (struct sockaddr *)&ss, (socklen_t)len) != 0)
        fatal(errno, "bind");
    if (listen(fd, 8) != 0)
        fatal(errno, "listen");
    return fd;
}

/* Byte by byte up to '\n': slow, but leaves nothing unread behind the request. */
static long get_size(int fd)
{
    char text[32];
    size_t used = 0;
    for (;;) {
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        if (c == '\n')
            break;
        if (used + 1 >= sizeof text)
            return -1;
        text[used++] = c;
    }
    text[used] = '\0';
    if (used > 0 && text[used - 1] == '\r')
        text[--used] = '\0';
    char *end;
    long size = strtol(text, &end, 10);
    return (used == 0 || *end || size < 0 || size > (64L << 20)) ? -1 : size;
}

static void drain(int fd)
{
    char junk[1024];
    ssize_t n;
    while ((n = recv(fd, junk, sizeof junk, 0)) != 0) {
        if (n < 0 && errno != EINTR) {
            warning(errno, "recv");
            return;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4)
        fatal(0, "usage: %s PORT MODE [reuse|noreuse]", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);
    const char *mode = argv[2];
    int linger_s = 0;
    if (strncmp(mode, "linger=", 7) == 0) {
        const char *digits = mode + 7;
        if (*digits == '\0' || strspn(digits, "0123456789") != strlen(digits) || strlen(digits) > 4)
            fatal(0, "invalid mode '%s'", mode);
        linger_s = atoi(digits);
        if (linger_s < 1 || linger_s > 3600)
            fatal(0, "invalid mode '%s'", mode);
    } else if (strcmp(mode, "close") && strcmp(mode, "wait") && strcmp(mode, "abort")) {
        fatal(0, "invalid mode '%s'", mode);
    }
    if (argc == 4 && strcmp(argv[3], "reuse") && strcmp(argv[3], "noreuse"))
        fatal(0, "invalid option '%s'", argv[3]);
    int reuse = !(argc == 4 && strcmp(argv[3], "noreuse") == 0);
    /* a client that hangs up mid-reply: EPIPE from writen, not death */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        fatal(errno, "signal");

    int lfd = open_listener(port, reuse);
    printf("listening on %d\n", local_port(lfd));

    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fatal(errno, "accept");
        }
        long size = get_size(fd);
        if (size < 0) {
            puts("bad request");
            close(fd);
            continue;
        }
        char *reply = malloc(size ? (size_t)size : 1);
        if (reply == NULL)
            fatal(errno, "malloc");
        for (long i = 0; i < size; i++)
            reply[i] = "abcdefghijklmnopqrstuvwxyz"[i % 26];
        ssize_t ok = writen(fd, reply, (size_t)size);
        free(reply);
        if (ok < 0) {
            warning(errno, "send");
            close(fd);
            continue;
        }
        printf("sent %ld bytes\n", size);

        struct linger lg = { 0, 0 };
        if (strcmp(mode, "wait") == 0) {
            drain(fd);
            puts("peer closed");
        } else if (strcmp(mode, "abort") == 0) {
            lg.l_onoff = 1;
        } else if (linger_s > 0) {
            lg.l_onoff = 1;
            lg.l_linger = linger_s;
        }
        if (lg.l_onoff && setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) != 0)
            fatal(errno, "setsockopt");
        double t0 = seconds_now();
        close(fd);
        printf("closed after %ld ms\n", (long)((seconds_now() - t0) * 1000));
    }
}
