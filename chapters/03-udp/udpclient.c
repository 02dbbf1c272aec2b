/*
 * udpclient [-c] HOST PORT [TIMEOUT_MS] - send each line of stdin as one datagram to
 * HOST:PORT and print the one datagram that comes back, or a timeout line.  With -c
 * the socket is connected first.  See README.md, "Contract".
 */
#include <sys/time.h>

#include "common.h"

#define MAX_PAYLOAD 65507
#define DEFAULT_TIMEOUT_MS 3000

struct options {
    int connected;          /* -c given */
    const char *host;
    uint16_t port;
    long timeout_ms;
};

static struct options parse_args(int argc, char **argv)
{
    struct options o = {0, NULL, 0, DEFAULT_TIMEOUT_MS};
    int i = 1;
    if (i < argc && strcmp(argv[i], "-c") == 0) {
        o.connected = 1;
        i++;
    }
    if (argc - i < 2 || argc - i > 3)
        fatal(0, "usage: %s [-c] HOST PORT [TIMEOUT_MS]", argv[0]);
    o.host = argv[i];
    o.port = parse_port_or_die(argv[i + 1]);
    if (argc - i == 3) {
        char *end;
        errno = 0;
        o.timeout_ms = strtol(argv[i + 2], &end, 10);
        if (errno != 0 || *end != '\0' || end == argv[i + 2] || o.timeout_ms <= 0)
            fatal(0, "invalid timeout '%s'", argv[i + 2]);
    }
    return o;
}

/* Make every receive on fd give up after timeout_ms milliseconds. */
static void set_receive_timeout(int fd, long timeout_ms)
{
    /* TODO: without this, a datagram that never comes (lost, or no server at all)
     * blocks the client forever.  SO_RCVTIMEO takes a struct timeval; once it is set,
     * recv/recvfrom fail with EAGAIN (== EWOULDBLOCK) when the time is up.  (poll()
     * with a timeout before receiving works too, if you prefer.) */
    TODO("set_receive_timeout: SO_RCVTIMEO");
}

/* Send exactly len bytes of line as one datagram. */
static void send_line(int fd, const struct options *o, const struct sockaddr *to, socklen_t to_len,
                      const char *line, size_t len)
{
    /* TODO: connected: send() (the kernel knows the peer).  Otherwise sendto() with the
     * server's address.  A failure is fatal and names the call: fatal(errno, "send")
     * prints "send: Connection refused (111)". */
    TODO("send_line: send / sendto");
}

/* Receive one datagram and print it as a line, or print the timeout line. */
static void print_reply(int fd, const struct options *o)
{
    static char buf[MAX_PAYLOAD];
    /* TODO: recv() (connected) or recvfrom() (not connected), retrying on EINTR.
     *   - got n bytes (n may be 0): print exactly those n bytes and a newline;
     *   - EAGAIN/EWOULDBLOCK: print "no reply within <timeout_ms> ms" and return;
     *   - anything else (ECONNREFUSED, on a connected socket): fatal(errno, "recv"). */
    (void)buf;
    TODO("print_reply: recv / recvfrom");
}

int main(int argc, char **argv)
{
    struct options o = parse_args(argc, argv);

    struct sockaddr_storage server;
    int server_len = fill_sockaddr(&server, o.host, o.port);
    if (server_len < 0)
        fatal(0, "invalid address '%s'", o.host);

    int fd = socket(server.ss_family, SOCK_DGRAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    if (o.connected) {
        /* TODO: connect() the UDP socket to the server.  Nothing goes on the wire: the
         * kernel records the peer, and from then on only that peer's datagrams are
         * delivered, and an ICMP "port unreachable" for it is reported to you as
         * ECONNREFUSED.  Without -c, do NOT connect: that is the other half of the
         * lesson. */
        TODO("connect the UDP socket (-c)");
    }
    set_receive_timeout(fd, o.timeout_ms);

    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        if (line[len - 1] == '\n')
            len--;              /* the newline ends the line; it is not part of the datagram */
        send_line(fd, &o, (struct sockaddr *)&server, (socklen_t)server_len, line, (size_t)len);
        print_reply(fd, &o);
    }
    if (ferror(stdin))
        fatal(errno, "reading stdin");
    free(line);
    close(fd);
    return 0;
}
