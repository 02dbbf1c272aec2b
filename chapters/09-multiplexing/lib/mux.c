/*
 * mux.c - byte buffers and the rot13 line protocol for chapter 09 (see mux.h).
 */
#include "mux.h"

#include "common.h"

void buffer_init(struct buffer *b)
{
    b->data = NULL;
    b->start = b->end = b->cap = 0;
}

void buffer_free(struct buffer *b)
{
    free(b->data);
    buffer_init(b);
}

size_t buffer_len(const struct buffer *b)
{
    return b->end - b->start;
}

const char *buffer_data(const struct buffer *b)
{
    return b->data + b->start;
}

void buffer_consume(struct buffer *b, size_t n)
{
    b->start += n;
    if (b->start == b->end)         /* empty: start again at the front */
        b->start = b->end = 0;
}

char *buffer_space(struct buffer *b, size_t n)
{
    if (b->cap - b->end >= n)
        return b->data + b->end;
    size_t len = buffer_len(b);
    if (b->start > 0 && b->cap - len >= n) {       /* enough room once compacted */
        memmove(b->data, b->data + b->start, len);
        b->start = 0;
        b->end = len;
        return b->data + b->end;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - len < n)
        cap *= 2;
    char *data = malloc(cap);
    if (data == NULL)
        fatal(errno, "malloc");
    if (len > 0)
        memcpy(data, b->data + b->start, len);
    free(b->data);
    b->data = data;
    b->start = 0;
    b->end = len;
    b->cap = cap;
    return b->data + b->end;
}

void buffer_commit(struct buffer *b, size_t n)
{
    b->end += n;
}

void buffer_append(struct buffer *b, const void *bytes, size_t n)
{
    memcpy(buffer_space(b, n), bytes, n);
    buffer_commit(b, n);
}

char rot13(char c)
{
    if ((c >= 'a' && c <= 'm') || (c >= 'A' && c <= 'M'))
        return (char)(c + 13);
    if ((c >= 'n' && c <= 'z') || (c >= 'N' && c <= 'Z'))
        return (char)(c - 13);
    return c;
}

int answer_lines(struct buffer *in, struct buffer *out)
{
    int lines = 0;
    for (;;) {
        const char *text = buffer_data(in);
        size_t len = buffer_len(in);
        const char *nl = len ? memchr(text, '\n', len) : NULL;
        if (nl == NULL)
            return len > MAX_LINE ? -1 : lines;
        size_t line_len = (size_t)(nl - text) + 1;
        if (line_len > MAX_LINE)
            return -1;
        char *dst = buffer_space(out, line_len);
        text = buffer_data(in);             /* (in and out are different buffers) */
        for (size_t i = 0; i < line_len; i++)
            dst[i] = rot13(text[i]);
        buffer_commit(out, line_len);
        buffer_consume(in, line_len);
        lines++;
    }
}
