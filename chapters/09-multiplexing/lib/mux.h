/*
 * mux.h - the parts of chapter 09's servers that are not about multiplexing:
 * a growable byte buffer (one for input and one for output per connection) and
 * the rot13 line protocol.  They are complete; your work is the event loops.
 *
 *   struct buffer in, out;                 one pair per connection
 *   char *space = buffer_space(&in, 4096); room for one read()
 *   ssize_t n = read(fd, space, 4096);
 *   buffer_commit(&in, n);                 those n bytes are now in the buffer
 *   answer_lines(&in, &out);               every complete line -> its reply in out
 *   write(fd, buffer_data(&out), buffer_len(&out)) -> buffer_consume(&out, written)
 */
#ifndef MUX_H
#define MUX_H

#include <stddef.h>
#include <sys/types.h>

/* Longest line (with its '\n') the servers accept; answer_lines() refuses longer ones. */
#define MAX_LINE (256 * 1024)

struct buffer {
    char *data;
    size_t start;           /* first byte not consumed yet */
    size_t end;             /* one past the last byte stored */
    size_t cap;             /* bytes allocated */
};

/* An empty buffer (no memory allocated until something is stored). */
void buffer_init(struct buffer *b);
void buffer_free(struct buffer *b);

/* How many bytes are stored, and where the first one is. */
size_t buffer_len(const struct buffer *b);
const char *buffer_data(const struct buffer *b);

/* Forget the first n stored bytes (n <= buffer_len), e.g. after write() sent them. */
void buffer_consume(struct buffer *b, size_t n);

/* Make room for n more bytes and return where they go; exits on out-of-memory.
 * Then buffer_commit() says how many of them were really filled (by read()). */
char *buffer_space(struct buffer *b, size_t n);
void buffer_commit(struct buffer *b, size_t n);

/* Append n bytes (buffer_space + memcpy + buffer_commit). */
void buffer_append(struct buffer *b, const void *bytes, size_t n);

/* rot13: a-m/A-M move 13 letters forward, n-z/N-Z 13 back; any other byte is unchanged. */
char rot13(char c);

/*
 * answer_lines - the protocol.  Move every complete line (up to and including its
 * '\n') from the front of `in` to the end of `out`, rot13'd.  Bytes after the last
 * '\n' stay in `in`: the rest of that line has not arrived yet.
 * Returns the number of lines answered, or -1 if the unfinished line in `in` is
 * already longer than MAX_LINE (the caller should close the connection).
 */
int answer_lines(struct buffer *in, struct buffer *out);

#endif /* MUX_H */
