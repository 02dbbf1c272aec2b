/*
 * linesrv PORT MAXLINE - receive text lines (LF or CRLF), print each one, echo it back.
 *
 * One connection at a time; see README.md, "Contract".
 *
 * Reference solution for chapter 08.
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
    for (;;) {
        char *nl = memchr(lb->data, '\n', lb->used);
        if (nl != NULL) {
            size_t n = (size_t)(nl - lb->data);
            size_t content = (n > 0 && lb->data[n - 1] == '\r') ? n - 1 : n;
            if (content > maxline)
                return LINE_TOO_LONG;
            memcpy(out, lb->data, content);
            out[content] = '\0';                    /* content <= maxline: in bounds */
            *len = content;
            size_t eaten = n + 1;                   /* the line and its '\n' */
            memmove(lb->data, lb->data + eaten, lb->used - eaten);
            lb->used -= eaten;
            return LINE_OK;
        }
        if (lb->used == lb->cap)
            return LINE_TOO_LONG;                   /* full, and still no '\n' */

        ssize_t r = read(lb->fd, lb->data + lb->used, lb->cap - lb->used);
        if (r == 0) {
            if (lb->used > 0)
                warning(0, "peer closed in the middle of a line (%zu bytes dropped)", lb->used);
            return LINE_CLOSED;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return LINE_FAILED;
        }
        lb->used += (size_t)r;
    }
}

/* Serve one connection until it ends. */
static void serve(int conn, char *storage, char *line, size_t maxline)
{
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
    char *storage = malloc(maxline + 2);            /* the connection's bytes */
    char *line = malloc(maxline + 1);               /* one line and its NUL (or '\n') */
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
