/*
 * server PORT [ADDRESS] - listen on ADDRESS:PORT (default 0.0.0.0), say where, and greet
 * each client with the address and port it came from.  See README.md, "Contract".
 */
#include "common.h"

#include <poll.h>
#include <signal.h>
#include <time.h>

/* How long a client may take to close after its greeting before we close anyway. */
#define DRAIN_MS 500

/* Create a TCP socket bound to address:port and listening; return its descriptor. */
static int listen_on(const char *address, uint16_t port)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    /* TODO: fill addr: family, port (network byte order), and the address parsed from
     * text with inet_pton.  Invalid text must end the program with
     *     fatal(0, "invalid address '%s'", address);
     * Then socket(), bind(), listen().  Check each call; on failure report it by name,
     * e.g. fatal(errno, "bind"), which prints "bind: Address already in use (98)". */
    TODO("listen_on: sockaddr_in, socket, bind, listen");
}

/* Tell one client where it came from:  "hello 127.0.0.1:40312\n". */
static void greet(int conn, const struct sockaddr_in *peer)
{
    /* TODO: turn peer's address into text (inet_ntop) and its port into a number
     * (ntohs), print "connection from IP:PORT" on stdout and send "hello IP:PORT\n"
     * to the client with writen(). */
    (void)conn;
    (void)peer;
    TODO("greet");
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Given: end a connection so that the client sees the greeting and then EOF.  close()
 * on a socket that still holds unread bytes (the client's 6-byte introduction) sends
 * RST, not FIN, and a reset may destroy the greeting before the client has read it.
 * So: send our FIN first, read and drop what the client sends until it closes too --
 * for at most DRAIN_MS, so that a client that never closes cannot hold up the others --
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

    /* TODO: PORT may be 0, which lets the kernel choose.  Ask the socket which port it
     * really has (getsockname) and print "listening on ADDRESS:PORT" with that port. */

    for (;;) {
        /* TODO: accept() a connection, keeping the client's address; greet it; then end
         * it with close_gracefully(conn) (never close the listening socket).  accept()
         * can fail with EINTR or ECONNABORTED for reasons that are not fatal: try again. */
        (void)listen_fd;
        TODO("accept loop");
    }
}
