/*
 * client HOST PORT COUNT [CHUNK] - connect, send COUNT bytes with blocking writes of
 * at most CHUNK bytes each, half-close, then print what the server says until it
 * closes.  See README.md, "Contract".
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

/* socket + connect.  A refused or unreachable server must end the program here. */
static int connect_to(const char *host, uint16_t port)
{
    struct sockaddr_storage server;
    int len = fill_sockaddr(&server, host, port);
    if (len < 0)
        fatal(0, "invalid address '%s'", host);

    /* TODO: create a TCP socket of server.ss_family and connect() it to server.
     * connect() returns only when the three-way handshake is over (or failed).
     * If it fails, the program must stop with the reason, by name:
     *     connect: Connection refused (111)
     * fatal(errno, "connect") prints exactly that and exits 1. */
    (void)len;
    TODO("connect_to: socket and connect, with the error checked");
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

/* Hand all count bytes to the kernel, at most chunk bytes per write() call. */
static size_t send_all(int fd, const char *buf, size_t count, size_t chunk)
{
    /* TODO: call write() until all count bytes are in.  Each call offers the next
     * min(chunk, what is left) bytes, starting where the previous call stopped.
     * A blocking write sleeps while the send buffer is full; it may still return
     * fewer bytes than offered, so use its return value, not what you asked for.
     * EINTR means "try again"; any other error: fatal(errno, "write"). */
    (void)fd;
    (void)buf;
    (void)count;
    (void)chunk;
    TODO("send_all: the write loop");
}

/* Copy the server's bytes to stdout until it closes; end with "server closed". */
static void print_until_eof(int fd)
{
    /* TODO: read() and copy to stdout until read() returns 0: that is the server's
     * FIN, and nothing more will ever come.  Then print the line "server closed"
     * (on a line of its own).  A read error: fatal(errno, "read"). */
    (void)fd;
    TODO("print_until_eof: the read loop");
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

    /* TODO: we are done sending but not done listening.  Tell the server so with
     * shutdown(fd, SHUT_WR): it sends our FIN, and the server's read() returns 0,
     * while our side can still read its answer.  (close() would give up both
     * directions; chapter 06 is about the difference.) */
    TODO("shutdown the write side");

    print_until_eof(fd);
    if (close(fd) < 0)
        fatal(errno, "close");
    return 0;
}
