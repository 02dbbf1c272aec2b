/*
 * client HOST PORT COUNT [CHUNK] - connect, send COUNT bytes with blocking writes of
 * at most CHUNK bytes each, half-close, then print what the server says until it
 * closes.
 *
 * Reference solution for chapter 02.
 */
#include "common.h"

#include <signal.h>

#define MAX_COUNT (1UL << 30)   /* 1 GiB: enough for any experiment */

/* "10240000" -> 10240000; anything but a plain decimal number up to max exits 1. */
static size_t parse_size_or_die(const char *text, const char *what, size_t max)
{
    char *end;
    unsigned long long value;

    if (text[0] < '0' || text[0] > '9')
        fatal(0, "invalid %s '%s'", what, text);
    errno = 0;
    value = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || value > max)
        fatal(0, "invalid %s '%s'", what, text);
    return (size_t)value;
}

/* socket + connect.  A refused or unreachable server ends the program here. */
static int connect_to(const char *host, uint16_t port)
{
    struct sockaddr_storage server;
    int len = fill_sockaddr(&server, host, port);
    if (len < 0)
        fatal(0, "invalid address '%s'", host);

    int fd = socket(server.ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    /* Blocks for the whole three-way handshake: SYN out, SYN-ACK in, ACK out. */
    if (connect(fd, (struct sockaddr *)&server, (socklen_t)len) < 0)
        fatal(errno, "connect");
    return fd;
}

/* Say which address and port the kernel picked for our end of the connection. */
static void print_own_address(int fd)
{
    struct sockaddr_storage self;
    socklen_t len = sizeof(self);
    char text[ADDR_STRLEN];

    if (getsockname(fd, (struct sockaddr *)&self, &len) < 0)
        fatal(errno, "getsockname");
    printf("connected from %s\n", format_addr((struct sockaddr *)&self, len, text, sizeof(text)));
}

/* Byte i of the stream is 'a' + i % 26, so the receiver can tell where it is. */
static char *make_payload(size_t count)
{
    char *buf = malloc(count > 0 ? count : 1);
    if (buf == NULL)
        fatal(errno, "malloc");
    for (size_t i = 0; i < count; i++)
        buf[i] = (char)('a' + i % 26);
    return buf;
}

/*
 * Hand all count bytes to the kernel, at most chunk per write().  A blocking write
 * sleeps until the send buffer has room; it can still return less than asked (a
 * signal after part of the data went in), so keep going from where it stopped.
 */
static size_t send_all(int fd, const char *buf, size_t count, size_t chunk)
{
    size_t sent = 0;

    while (sent < count) {
        size_t want = count - sent < chunk ? count - sent : chunk;
        ssize_t n = write(fd, buf + sent, want);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fatal(errno, "write");
        }
        sent += (size_t)n;
    }
    return sent;
}

/* Copy the server's bytes to stdout until it closes; end with "server closed". */
static void print_until_eof(int fd)
{
    char buf[4096];
    char last = '\n';

    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fatal(errno, "read");
        }
        if (n == 0)
            break;                  /* the server's FIN: nothing more will come */
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
            fatal(errno, "fwrite");
        last = buf[n - 1];
    }
    printf("%sserver closed\n", last == '\n' ? "" : "\n");
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5)
        fatal(0, "usage: %s HOST PORT COUNT [CHUNK]", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);
    size_t count = parse_size_or_die(argv[3], "count", MAX_COUNT);
    size_t chunk = argc == 5 ? parse_size_or_die(argv[4], "chunk", MAX_COUNT) : count;
    if (chunk == 0 && argc == 5)
        fatal(0, "invalid chunk '%s'", argv[4]);

    /* A server that resets the connection while we write must end us with a message
     * (write: Broken pipe), not silently: a write after the reset raises SIGPIPE. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        fatal(errno, "signal");

    char *payload = make_payload(count);
    int fd = connect_to(argv[1], port);
    print_own_address(fd);

    size_t sent = send_all(fd, payload, count, chunk);
    printf("sent %zu bytes\n", sent);
    free(payload);

    /* We are done sending, not done listening: FIN out, read side stays open. */
    if (shutdown(fd, SHUT_WR) < 0)
        fatal(errno, "shutdown");
    print_until_eof(fd);
    if (close(fd) < 0)
        fatal(errno, "close");
    return 0;
}
