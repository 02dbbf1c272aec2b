/*
 * linesrv PORT MAXLINE - receive text lines (LF or CRLF), print each one, echo it back.
 *
 * One connection at a time; see README.md, "Contract".
 *
 * Your part: next_line.  Do not use lib's read_line here: writing it yourself is
 * the exercise.
 */
#include "common.h"

#include <signal.h>

#define MAXLINE_LIMIT (1u << 20)

/*
 * The bytes received on one connection and not handed out as lines yet.  It lives
 * as long as the connection: whatever one read() brought after the end of a line
 * is the start of the next one, and must not be thrown away.
 */
struct line_buffer {
    int fd;
    char *data;
    size_t cap;         /* maxline + 2: the longest line we accept, plus "\r\n" */
    size_t used;        /* bytes in data[0 .. used) */
};

enum line_result {
    LINE_OK,            /* a line was copied out, terminator removed */
    LINE_CLOSED,        /* EOF (an unterminated last line is dropped) */
    LINE_TOO_LONG,      /* more than maxline bytes before the terminator */
    LINE_FAILED,        /* read() failed; errno says why */
};

static void line_buffer_init(struct line_buffer *lb, int fd, char *storage, size_t cap)
{
    lb->fd = fd;
    lb->data = storage;
    lb->cap = cap;
    lb->used = 0;
}

/*
 * Copy the next line (without "\n" or "\r\n") into out, which holds maxline + 1
 * bytes, NUL-terminate it and store its length in *len.  Bytes after the line
 * stay in lb for the next call.
 */
static enum line_result next_line(struct line_buffer *lb, size_t maxline, char *out, size_t *len)
{
    /* TODO: loop:
     *  1. Look for '\n' among the lb->used bytes already buffered (memchr).  If
     *     there is one, the line is everything before it, minus one '\r' right
     *     before the '\n'.  More than maxline bytes of line: LINE_TOO_LONG.
     *     Otherwise copy it to out, add the '\0', set *len, then remove the line
     *     and its terminator from the front of the buffer -- and keep the bytes
     *     after it: they are the next lines (memmove).  Return LINE_OK.
     *  2. No '\n', and the buffer is full (used == cap): the line can only be too
     *     long.  Return LINE_TOO_LONG now instead of waiting for more.
     *  3. Otherwise read() more into the free space after the buffered bytes (never
     *     more than cap - used).  0 = EOF: LINE_CLOSED (bytes still buffered are an
     *     unfinished line: drop them, a warning on stderr is a kindness).  EINTR:
     *     try again.  Other errors: LINE_FAILED.
     * Buffer the bytes first and only then look for lines: reading one byte per
     * read() call would also work, at the price of one system call per byte. */
    (void)lb;
    (void)maxline;
    (void)out;
    (void)len;
    TODO("next_line");
}

/* Serve one connection until it ends. */
static void serve(int conn, char *storage, char *line, size_t maxline)
{
    /* One line_buffer per connection, created when it starts: bytes left over from
     * a previous connection must never leak into this one. */
    struct line_buffer lb;
    line_buffer_init(&lb, conn, storage, maxline + 2);

    for (;;) {
        size_t len = 0;
        switch (next_line(&lb, maxline, line, &len)) {
        case LINE_OK:
            /* the line as it is, NUL bytes included: "%s" would stop at the first */
            printf("line: ");
            fwrite(line, 1, len, stdout);
            putchar('\n');
            line[len] = '\n';                       /* the echo: the line, LF-terminated */
            if (writen(conn, line, len + 1) < 0) {
                warning(errno, "write");
                return;
            }
            break;
        case LINE_TOO_LONG:
            printf("line too long (max %zu)\n", maxline);
            return;
        case LINE_CLOSED:
            return;
        case LINE_FAILED:
            warning(errno, "read");
            return;
        }
    }
}

static size_t parse_maxline_or_die(const char *text)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    /* digits only: strtoul alone would take " 12", "+12" and "-1" */
    if (text[strspn(text, "0123456789")] != '\0' || errno != 0 || end == text || v == 0 || v > MAXLINE_LIMIT)
        fatal(0, "invalid MAXLINE '%s' (1..%u)", text, MAXLINE_LIMIT);
    return (size_t)v;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s PORT MAXLINE", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);
    size_t maxline = parse_maxline_or_die(argv[2]);

    signal(SIGPIPE, SIG_IGN);

    /* Exact sizes, so that a one-byte overflow is a real one (ASan sees it). */
    char *storage = malloc(maxline + 2);            /* the connection's bytes: line + "\r\n" */
    char *line = malloc(maxline + 1);               /* one line and its '\0' (or the echo's '\n') */
    if (storage == NULL || line == NULL)
        fatal(errno, "malloc");

    int listen_fd = tcp_listen_or_die(NULL, port, 16);
    printf("listening on %d\n", local_port(listen_fd));

    for (;;) {
        int conn = accept(listen_fd, NULL, NULL);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fatal(errno, "accept");
        }
        serve(conn, storage, line, maxline);
        if (close(conn) < 0)
            warning(errno, "close");
        printf("connection closed\n");
    }
}
