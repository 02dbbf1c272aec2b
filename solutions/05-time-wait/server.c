/*
 * server PORT MODE [reuse|noreuse] - answer one request per connection, then end the
 * connection the way MODE says, and report how long close() took.
 *
 * Reference solution for chapter 05.  See README.md, "Contract".
 */
#include "common.h"

#include <signal.h>
#include <time.h>

#define MAX_REPLY (64L << 20)

enum close_mode { MODE_CLOSE, MODE_WAIT, MODE_ABORT, MODE_LINGER };

struct options {
    uint16_t port;
    enum close_mode mode;
    int linger_seconds;         /* MODE_LINGER only */
    int reuse;                  /* set SO_REUSEADDR on the listening socket */
};

static long long now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
        fatal(errno, "clock_gettime");
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void parse_mode(const char *text, struct options *opt)
{
    if (strcmp(text, "close") == 0) {
        opt->mode = MODE_CLOSE;
    } else if (strcmp(text, "wait") == 0) {
        opt->mode = MODE_WAIT;
    } else if (strcmp(text, "abort") == 0) {
        opt->mode = MODE_ABORT;
    } else if (strncmp(text, "linger=", 7) == 0) {
        char *end;
        long seconds = strtol(text + 7, &end, 10);
        if (end == text + 7 || *end != '\0' || seconds < 1 || seconds > 3600)
            fatal(0, "invalid mode '%s' (linger=SECONDS, 1..3600)", text);
        opt->mode = MODE_LINGER;
        opt->linger_seconds = (int)seconds;
    } else {
        fatal(0, "invalid mode '%s' (close, wait, abort or linger=SECONDS)", text);
    }
}

static int listen_socket(uint16_t port, int reuse)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_ANY);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    /* Without this, bind() fails while any connection on this port is in TIME_WAIT. */
    if (reuse) {
        int on = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0)
            fatal(errno, "setsockopt SO_REUSEADDR");
    }
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        fatal(errno, "bind");
    if (listen(fd, 16) < 0)
        fatal(errno, "listen");
    return fd;
}

static void set_linger(int fd, int onoff, int seconds)
{
    struct linger lg = { .l_onoff = onoff, .l_linger = seconds };
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
        fatal(errno, "setsockopt SO_LINGER");
}

/* Read the request line "SIZE\n"; returns SIZE, or -1 for EOF or a malformed line. */
static long read_request(struct line_reader *lr)
{
    char line[64];
    ssize_t n = read_line(lr, line, sizeof(line));
    if (n <= 0)
        return -1;
    char *end;
    errno = 0;
    long size = strtol(line, &end, 10);
    if (end == line || (*end != '\n' && *end != '\0') || errno != 0 || size < 0 || size > MAX_REPLY)
        return -1;
    return size;
}

/* SIZE bytes of "abc...zabc...": byte i is 'a' + i % 26. */
static int send_reply(int conn, long size)
{
    char chunk[26 * 512];
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (char)('a' + i % 26);
    while (size > 0) {
        size_t n = size < (long)sizeof(chunk) ? (size_t)size : sizeof(chunk);
        if (writen(conn, chunk, n) < 0)
            return -1;
        size -= (long)n;        /* chunk is a multiple of 26 long: the pattern carries on */
    }
    return 0;
}

/* Read and throw away whatever the client still sends, until it closes. */
static void wait_for_eof(struct line_reader *lr)
{
    char sink[4096];
    for (;;) {
        ssize_t n = read_line(lr, sink, sizeof(sink));
        if (n == 0)
            return;
        if (n < 0 && errno != EMSGSIZE) {
            warning(errno, "read");
            return;
        }
    }
}

static void finish(int conn, struct line_reader *lr, const struct options *opt)
{
    switch (opt->mode) {
    case MODE_CLOSE:
        break;
    case MODE_WAIT:
        wait_for_eof(lr);
        printf("peer closed\n");
        break;
    case MODE_ABORT:
        set_linger(conn, 1, 0);
        break;
    case MODE_LINGER:
        set_linger(conn, 1, opt->linger_seconds);
        break;
    }
    long long start = now_ms();
    if (close(conn) < 0)
        warning(errno, "close");
    printf("closed after %lld ms\n", now_ms() - start);
}

static void serve(int conn, const struct options *opt)
{
    struct line_reader lr;
    line_reader_init(&lr, conn);
    long size = read_request(&lr);
    if (size < 0) {
        printf("bad request\n");
        if (close(conn) < 0)
            warning(errno, "close");
        return;
    }
    if (send_reply(conn, size) < 0) {
        warning(errno, "write");
        if (close(conn) < 0)
            warning(errno, "close");
        return;
    }
    printf("sent %ld bytes\n", size);
    finish(conn, &lr, opt);
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4)
        fatal(0, "usage: %s PORT close|wait|abort|linger=SECONDS [reuse|noreuse]", argv[0]);
    struct options opt = { .port = parse_port_or_die(argv[1]), .reuse = 1 };
    parse_mode(argv[2], &opt);
    if (argc == 4) {
        if (strcmp(argv[3], "noreuse") == 0)
            opt.reuse = 0;
        else if (strcmp(argv[3], "reuse") != 0)
            fatal(0, "invalid option '%s' (reuse or noreuse)", argv[3]);
    }
    /* A client that hangs up in the middle of a reply must cost only its connection:
     * the failed write comes back as EPIPE (reported by serve()) instead of a SIGPIPE
     * that would kill the server. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        fatal(errno, "signal");

    int listen_fd = listen_socket(opt.port, opt.reuse);
    printf("listening on %d\n", local_port(listen_fd));

    for (;;) {
        int conn = accept(listen_fd, NULL, NULL);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fatal(errno, "accept");
        }
        serve(conn, &opt);
    }
}
