/*
 * udpclient [-c] HOST PORT [TIMEOUT_MS] - send each line of stdin as one datagram to
 * HOST:PORT and print the one datagram that comes back.  With -c the socket is
 * connected first, so the kernel can report "Connection refused".
 *
 * Reference solution for chapter 03.
 */
#include <sys/time.h>

#include "common.h"

#define MAX_PAYLOAD 65507
#define DEFAULT_TIMEOUT_MS 3000

struct options {
    int connected;
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

/* recvfrom/recv give up after timeout_ms with EAGAIN instead of waiting forever. */
static void set_receive_timeout(int fd, long timeout_ms)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
        fatal(errno, "setsockopt SO_RCVTIMEO");
}

/* One datagram out: exactly the line's bytes, no newline, no NUL. */
static void send_line(int fd, const struct options *o, const struct sockaddr *to, socklen_t to_len,
                      const char *line, size_t len)
{
    ssize_t n = o->connected ? send(fd, line, len, 0) : sendto(fd, line, len, 0, to, to_len);
    if (n < 0)
        fatal(errno, o->connected ? "send" : "sendto");
}

/* One datagram in, printed as a line; or a timeout line.  Returns nothing: either way
 * the next line of stdin comes next. */
static void print_reply(int fd, const struct options *o)
{
    static char buf[MAX_PAYLOAD];
    ssize_t n;
    do
        n = o->connected ? recv(fd, buf, sizeof(buf), 0)
                         : recvfrom(fd, buf, sizeof(buf), 0, NULL, NULL);
    while (n < 0 && errno == EINTR);

    if (n >= 0) {
        /* bytes, not a C string: all n of them, NUL bytes included */
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n || putchar('\n') == EOF)
            fatal(errno, "printing");
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        printf("no reply within %ld ms\n", o->timeout_ms);
    } else {
        fatal(errno, o->connected ? "recv" : "recvfrom");
    }
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
    /* connect on UDP sends nothing: it records the peer, so that send() knows where to
     * go, only that peer's datagrams are delivered, and ICMP errors reach us. */
    if (o.connected && connect(fd, (struct sockaddr *)&server, (socklen_t)server_len) < 0)
        fatal(errno, "connect");
    set_receive_timeout(fd, o.timeout_ms);

    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        if (line[len - 1] == '\n')
            len--;
        send_line(fd, &o, (struct sockaddr *)&server, (socklen_t)server_len, line, (size_t)len);
        print_reply(fd, &o);
    }
    if (ferror(stdin))
        fatal(errno, "reading stdin");
    free(line);
    close(fd);
    return 0;
}
