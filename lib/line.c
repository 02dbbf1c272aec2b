/*
 * line.c - buffered line reading.  One read() may return half a line or several
 * lines; the reader keeps the surplus so that no line is ever lost or split.
 */
#include "common.h"

void line_reader_init(struct line_reader *lr, int fd)
{
    lr->fd = fd;
    lr->start = 0;
    lr->end = 0;
    lr->eof = 0;
    lr->discarding = 0;
}

size_t line_reader_pending(const struct line_reader *lr)
{
    return lr->end - lr->start;
}

/*
 * Append the next read() to the pending bytes, first moving them to the front so
 * a line can use the whole buffer.  The caller guarantees there is room.
 * Returns the byte count, 0 at EOF, or -1 (EINTR is retried).
 */
static ssize_t fill(struct line_reader *lr)
{
    size_t pending = lr->end - lr->start;

    if (lr->start > 0) {
        memmove(lr->buf, lr->buf + lr->start, pending);
        lr->start = 0;
        lr->end = pending;
    }
    for (;;) {
        ssize_t r = read(lr->fd, lr->buf + lr->end, sizeof(lr->buf) - lr->end);
        if (r > 0) {
            lr->end += (size_t)r;
            return r;
        }
        if (r == 0) {
            lr->eof = 1;
            return 0;
        }
        if (errno != EINTR)
            return -1;
    }
}

/*
 * Finish dropping an overlong line: skip through its '\n' (or to EOF).
 * Returns 0 when done, -1 if read() failed (e.g. EAGAIN; we stay in this mode).
 */
static int skip_rest_of_line(struct line_reader *lr)
{
    while (lr->discarding) {
        char *first = lr->buf + lr->start;
        char *nl = memchr(first, '\n', lr->end - lr->start);

        if (nl != NULL) {
            lr->start += (size_t)(nl - first) + 1;
            lr->discarding = 0;
        } else {
            lr->start = lr->end = 0;
            if (lr->eof)
                lr->discarding = 0;
            else if (fill(lr) < 0)
                return -1;
        }
    }
    return 0;
}

/* Drop the overlong line's bytes held so far; the rest goes on the next call. */
static ssize_t too_long(struct line_reader *lr)
{
    lr->start = lr->end = 0;
    lr->discarding = !lr->eof;
    errno = EMSGSIZE;
    return -1;
}

ssize_t read_line(struct line_reader *lr, char *line, size_t cap)
{
    size_t max;             /* longest line content that we accept */
    size_t scanned = 0;     /* pending bytes already known to hold no '\n' */

    if (cap < 2) {
        errno = EINVAL;
        return -1;
    }
    /* Content + '\n' + NUL must fit in line; content + "\r\n" in our buffer. */
    max = cap - 2;
    if (max > sizeof(lr->buf) - 2)
        max = sizeof(lr->buf) - 2;

    if (skip_rest_of_line(lr) < 0)
        return -1;

    for (;;) {
        char *first = lr->buf + lr->start;
        size_t avail = lr->end - lr->start;
        char *nl = memchr(first + scanned, '\n', avail - scanned);

        if (nl != NULL) {
            size_t len = (size_t)(nl - first);

            lr->start += len + 1;           /* consumed through '\n' in any case */
            if (len > 0 && first[len - 1] == '\r')
                len--;                      /* "\r\n" ends the line like "\n" */
            if (len > max) {
                errno = EMSGSIZE;
                return -1;
            }
            memcpy(line, first, len);
            line[len] = '\n';
            line[len + 1] = '\0';
            return (ssize_t)(len + 1);
        }
        scanned = avail;

        /* A '\r' at the very end may be half of a "\r\n" whose '\n' is still to come. */
        size_t at_least = avail;
        if (!lr->eof && avail > 0 && first[avail - 1] == '\r')
            at_least--;
        if (at_least > max)
            return too_long(lr);

        if (lr->eof) {
            /* The last line, without terminator (a final lone '\r' is data). */
            memcpy(line, first, avail);
            line[avail] = '\0';
            lr->start = lr->end = 0;
            return (ssize_t)avail;          /* 0: nothing left, a clean EOF */
        }
        /* avail <= max + 1 <= sizeof(buf) - 1, so fill() has room. */
        if (fill(lr) < 0)
            return -1;
    }
}
