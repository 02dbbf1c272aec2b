/*
 * server PORT MODE [reuse|noreuse] - answer one request per connection, then end the
 * connection the way MODE says, and report how long close() took.
 *
 * Your work: the listening socket (with or without SO_REUSEADDR) and the four ways
 * of ending a connection, in finish().  See README.md, "Contract".
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

    /* TODO: socket(), then -- only if reuse is true -- turn SO_REUSEADDR on, then bind()
     * and listen().  The option only matters if it is set before bind(): it is bind()
     * that looks for TIME-WAIT entries on the port.  Report a failing call by name,
     * e.g. fatal(errno, "bind") -> "bind: Address already in use (98)". */
    (void)addr;
    (void)reuse;
    TODO("listen_socket: socket, SO_REUSEADDR when asked, bind, listen");
}

/* Turn SO_LINGER on or off for fd; seconds is l_linger (used when onoff is 1). */
static void set_linger(int fd, int onoff, int seconds)
{
    /* TODO: fill a struct linger and hand it to setsockopt(SOL_SOCKET, SO_LINGER).
     * Check the result: fatal(errno, "setsockopt SO_LINGER"). */
    (void)fd;
    (void)onoff;
    (void)seconds;
    TODO("set_linger");
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

/* The reply has been sent: end the connection the way opt->mode says. */
static void finish(int conn, struct line_reader *lr, const struct options *opt)
{
    switch (opt->mode) {
    case MODE_CLOSE:
        /* TODO: nothing to prepare: a plain close() sends FIN after the queued data, and
         * this side -- the first to close -- will sit in TIME_WAIT. */
        TODO("finish: close mode");
        break;
    case MODE_WAIT:
        /* TODO: let the client close first: wait until read returns 0 (wait_for_eof does
         * that), print "peer closed", and only then close.  TIME_WAIT moves to the client. */
        (void)lr;
        TODO("finish: wait mode");
        break;
    case MODE_ABORT:
        /* TODO: make close() abortive: SO_LINGER on, with a linger time of 0.  The kernel
         * then sends RST, drops anything still queued, and keeps no TIME_WAIT. */
        TODO("finish: abort mode");
        break;
    case MODE_LINGER:
        /* TODO: make close() wait (at most opt->linger_seconds) until the client has
         * acknowledged all the data and the FIN. */
        TODO("finish: linger mode");
        break;
    }
    /* close() is timed on its own: only SO_LINGER can make it take long. */
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
