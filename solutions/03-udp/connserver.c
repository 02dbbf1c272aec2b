/*
 * connserver PORT - a UDP server that connects its socket to the first peer that
 * writes to it, so it hears only that peer; answers "Hi, <payload>"; exits on
 * "goodbye"; when the peer has gone away, disconnects and waits for a new one.
 *
 * Reference solution for chapter 03.
 */
#include "common.h"

#define MAX_PAYLOAD 65507
#define PREFIX "Hi, "

static int udp_bind_or_die(uint16_t port)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons(port);

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        fatal(errno, "bind");
    return fd;
}

/* connect() with family AF_UNSPEC dissolves the association: any peer again. */
static void disconnect_or_die(int fd)
{
    struct sockaddr unspec;
    memset(&unspec, 0, sizeof(unspec));
    unspec.sa_family = AF_UNSPEC;
    if (connect(fd, &unspec, sizeof(unspec)) < 0)
        fatal(errno, "connect AF_UNSPEC");
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

/* Reply on the connected socket.  Returns 0, or -1 with errno (ECONNREFUSED when an
 * earlier reply bounced off a closed port). */
static int reply(int fd, const char *payload, size_t len)
{
    static char out[sizeof(PREFIX) - 1 + MAX_PAYLOAD];
    size_t prefix_len = sizeof(PREFIX) - 1;
    size_t n = len < sizeof(out) - prefix_len ? len : sizeof(out) - prefix_len;

    memcpy(out, PREFIX, prefix_len);
    memcpy(out + prefix_len, payload, n);
    return send(fd, out, prefix_len + n, 0) < 0 ? -1 : 0;
}

/*
 * Serve the connected peer until it says goodbye (returns 1) or is gone (returns 0).
 * The first datagram, already received, is in payload[0..n).
 */
static int serve_peer(int fd, char *payload, ssize_t n)
{
    for (;;) {
        if (is_goodbye(payload, n))
            return 1;
        if (reply(fd, payload, (size_t)n) < 0) {
            if (errno == ECONNREFUSED)
                break;
            /* e.g. EMSGSIZE: "Hi, " + 65504 bytes do not fit in one datagram */
            warning(errno, "send");
        }
        do
            n = recv(fd, payload, MAX_PAYLOAD, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            if (errno != ECONNREFUSED)
                fatal(errno, "recv");
            break;
        }
        print_received(payload, n);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s PORT", argv[0]);
    int fd = udp_bind_or_die(parse_port_or_die(argv[1]));
    printf("bound to 0.0.0.0:%d\n", local_port(fd));

    static char payload[MAX_PAYLOAD];
    for (;;) {
        struct sockaddr_storage from;
        socklen_t from_len = sizeof(from);
        ssize_t n = recvfrom(fd, payload, sizeof(payload), 0, (struct sockaddr *)&from, &from_len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fatal(errno, "recvfrom");
        }
        print_received(payload, n);

        char peer[ADDR_STRLEN];
        format_addr((struct sockaddr *)&from, from_len, peer, sizeof(peer));
        if (connect(fd, (struct sockaddr *)&from, from_len) < 0)
            fatal(errno, "connect");
        printf("connected to %s\n", peer);

        if (serve_peer(fd, payload, n))
            return 0;
        /* Print only once it is true: the line tells the world "anyone may write now". */
        disconnect_or_die(fd);
        printf("disconnected from %s\n", peer);
    }
}
