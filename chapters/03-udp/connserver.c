/*
 * connserver PORT - a UDP server that connects its socket to the first peer that
 * writes to it, so that it hears only that peer; answers "Hi, <payload>"; exits on
 * "goodbye"; when the peer turns out to be gone, disconnects and waits for a new one.
 * See README.md, "Contract".
 */
#include "common.h"

#define MAX_PAYLOAD 65507
#define PREFIX "Hi, "

static int udp_bind_or_die(uint16_t port)
{
    /* TODO: the same as in udpserver.c: a UDP socket bound to 0.0.0.0:port. */
    TODO("udp_bind_or_die: socket, bind");
}

/* Undo connect(): the socket accepts datagrams from anyone again. */
static void disconnect_or_die(int fd)
{
    /* TODO: connect() to an address whose sa_family is AF_UNSPEC (the rest zeroed)
     * dissolves the association (getpeername() then fails with ENOTCONN). */
    TODO("disconnect_or_die: connect AF_UNSPEC");
}

/* "received N bytes: " and the payload's bytes as they are (NUL bytes too: it is not a
 * C string, so no %s), then a newline. */
static void print_received(const char *payload, ssize_t n)
{
    printf("received %zd bytes: ", n);
    if (fwrite(payload, 1, (size_t)n, stdout) != (size_t)n || putchar('\n') == EOF)
        fatal(errno, "printing");
}

static int is_goodbye(const char *payload, ssize_t n)
{
    return n == 7 && memcmp(payload, "goodbye", 7) == 0;
}

/* Send "Hi, <payload>" to the connected peer.  Returns 0, or -1 with errno set. */
static int reply(int fd, const char *payload, size_t len)
{
    /* TODO: like udpserver's reply, but with send(): the socket knows its peer.
     * Return -1 on failure and let the caller decide (ECONNREFUSED is expected). */
    TODO("reply: send");
}

/*
 * Serve the connected peer until it says goodbye (return 1) or turns out to be gone
 * (return 0).  The first datagram, already received, is in payload[0..n).
 */
static int serve_peer(int fd, char *payload, ssize_t n)
{
    /* TODO: loop: goodbye -> return 1; reply; recv() the next datagram (retry EINTR)
     * and print_received() it.  If reply or recv fails with ECONNREFUSED, a reply of
     * ours hit a closed port: the peer is gone, return 0.  Another reply error (e.g.
     * EMSGSIZE: "Hi, " and 65504 bytes do not fit in a datagram) costs a warning and
     * no reply; another recv error is fatal, named after the call. */
    TODO("serve_peer");
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s PORT", argv[0]);
    int fd = udp_bind_or_die(parse_port_or_die(argv[1]));
    printf("bound to 0.0.0.0:%d\n", local_port(fd));

    static char payload[MAX_PAYLOAD];
    for (;;) {
        /* TODO: recvfrom() the first datagram from anyone (with its address), print it,
         * connect() the socket to that address, print "connected to <address>"
         * (format_addr() renders it), then serve_peer().  If it returns 1, exit 0; if
         * 0, disconnect_or_die(), print "disconnected from <address>" (only now: that
         * line tells the grader anyone may write again), and wait for the next first
         * datagram. */
        (void)payload;
        TODO("first datagram, connect, serve");
    }
}
