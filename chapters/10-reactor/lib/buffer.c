/* buffer.c - a byte queue: [start, end) is readable, [end, cap) is free space. */
#include "reactor-internal.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common.h"

void rx_buf_init(struct rx_buffer *b)
{
    b->data = NULL;
    b->start = b->end = b->cap = 0;
}

void rx_buf_free(struct rx_buffer *b)
{
    free(b->data);
    rx_buf_init(b);
}

size_t rx_buf_len(const struct rx_buffer *b)
{
    return b->end - b->start;
}

const char *rx_buf_peek(const struct rx_buffer *b)
{
    return b->data + b->start;
}

/* Make room for n more bytes after `end`: slide the data to the front first, grow if
 * that is not enough. */
static void reserve(struct rx_buffer *b, size_t n)
{
    if (b->cap - b->end >= n)
        return;
    size_t len = rx_buf_len(b);
    if (b->start > 0) {
        memmove(b->data, b->data + b->start, len);
        b->start = 0;
        b->end = len;
        if (b->cap - b->end >= n)
            return;
    }
    size_t cap = b->cap ? b->cap : 256;    /* small first: most messages are */
    while (cap - len < n)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        fatal(errno, "realloc");
    b->data = p;
    b->cap = cap;
}

void rx_buf_append(struct rx_buffer *b, const void *data, size_t len)
{
    if (len == 0)
        return;
    reserve(b, len);
    memcpy(b->data + b->end, data, len);
    b->end += len;
}

/* Emptied: start over at the front, and give back a big allocation (a burst must not
 * pin megabytes to an idle connection). */
void rx_buf_consume(struct rx_buffer *b, size_t n)
{
    if (n < rx_buf_len(b)) {
        b->start += n;
        return;
    }
    b->start = b->end = 0;
    if (b->cap > RX_BUF_KEEP)
        rx_buf_free(b);
}

/* Read into the free space and a stack buffer at once (readv): one system call, and
 * an idle connection never holds more memory than it needs. */
ssize_t rx_buf_read_fd(struct rx_buffer *b, int fd, size_t max)
{
    char extra[65536];
    size_t room = b->cap - b->end;
    if (room > max)
        room = max;
    struct iovec iov[2] = {
        {.iov_base = b->data ? b->data + b->end : NULL, .iov_len = room},
        {.iov_base = extra, .iov_len = max - room < sizeof extra ? max - room : sizeof extra},
    };
    ssize_t n = readv(fd, iov, 2);
    if (n <= 0)
        return n;
    if ((size_t)n <= room) {
        b->end += (size_t)n;
    } else {
        b->end += room;
        rx_buf_append(b, extra, (size_t)n - room);
    }
    return n;
}
