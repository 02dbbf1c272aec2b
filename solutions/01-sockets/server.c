/*
 * server PORT [ADDRESS] - listen, say where, and greet each client with its own address.
 *
 * Reference solution for chapter 01.
 */
#include "common.h"

#include <poll.h>
#include <signal.h>
#include <time.h>

/* How long a client may take to close after its greeting before we close anyway. */
#define DRAIN_MS 500

static int listen_on(const char *address, uint16_t port)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (inet_pton(AF_INET, address, &addr.sin_addr) != 1)
        fatal(0, "invalid address '%s'", address);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        fatal(errno, "bind");
    if (listen(fd, 16) < 0)
        fatal(errno, "listen");
    return fd;
}

static void greet(int conn, const struct sockaddr_in *peer)
{
    char ip[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &peer->sin_addr, ip, sizeof(ip)) == NULL)
        fatal(errno, "inet_ntop");
    printf("connection from %s:%u\n", ip, ntohs(peer->sin_port));

    char line[64];
    int n = snprintf(line, sizeof(line), "hello %s:%u\n", ip, ntohs(peer->sin_port));
    if (writen(conn, line, (size_t)n) < 0)
        warning(errno, "write");
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * End a connection so that the client sees the greeting and then EOF.  close() on a
 * socket that still holds unread bytes (the client's 6-byte introduction) sends RST,
 * not FIN, and a reset may destroy the greeting before the client has read it.  So:
 * send our FIN first, read and drop what the client sends until it closes too -- for
 * at most DRAIN_MS, so that a client that never closes cannot hold up the others --
 * then close().  (Lesson 06 is about shutdown() and this kind of ending.)
 */
static void close_gracefully(int conn)
{
    shutdown(conn, SHUT_WR);    /* fails only if the client has already reset: fine */

    long long deadline = now_ms() + DRAIN_MS;
    struct pollfd pfd = {.fd = conn, .events = POLLIN};
    char sink[512];
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            break;
        int ready = poll(&pfd, 1, (int)left);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            break;              /* the time is up (or poll failed): close anyway */
        ssize_t n = read(conn, sink, sizeof(sink));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;              /* EOF: the client has closed; or it reset: it is gone */
    }
    if (close(conn) < 0)
        warning(errno, "close");
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3)
        fatal(0, "usage: %s PORT [ADDRESS]", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);
    const char *address = argc == 3 ? argv[2] : "0.0.0.0";

    /* A client that is gone before its greeting must cost a warning, not the server:
     * without this, writing to a connection the client has reset kills us (SIGPIPE). */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        fatal(errno, "signal");

    int listen_fd = listen_on(address, port);

    /* Port 0 asks the kernel to choose: only getsockname can tell which it chose. */
    struct sockaddr_in bound;
    socklen_t len = sizeof(bound);
    if (getsockname(listen_fd, (struct sockaddr *)&bound, &len) < 0)
        fatal(errno, "getsockname");
    printf("listening on %s:%u\n", address, ntohs(bound.sin_port));

    for (;;) {
        struct sockaddr_in peer;
        socklen_t peer_len = sizeof(peer);
        int conn = accept(listen_fd, (struct sockaddr *)&peer, &peer_len);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fatal(errno, "accept");
        }
        greet(conn, &peer);
        close_gracefully(conn);
    }
}
