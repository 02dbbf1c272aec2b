/*
 * io.c - readn/writen: a stream socket may return or accept fewer bytes than
 * asked at any time, and a signal may interrupt a blocked call (EINTR).
 */
#include "common.h"

ssize_t readn(int fd, void *buf, size_t n)
{
    char *p = buf;
    size_t got = 0;

    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r > 0) {
            got += (size_t)r;
        } else if (r == 0) {
            break;                          /* EOF: the caller sees got < n */
        } else if (errno == EINTR) {
            continue;
        } else if ((errno == EAGAIN || errno == EWOULDBLOCK) && got > 0) {
            break;                          /* non-blocking: hand back what we have */
        } else {
            return -1;
        }
    }
    return (ssize_t)got;
}

ssize_t writen(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    size_t sent = 0;

    while (sent < n) {
        ssize_t w = write(fd, p + sent, n - sent);
        if (w > 0) {
            sent += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else {
            if (w == 0)
                errno = EIO;                /* no progress and no error: don't spin */
            return -1;
        }
    }
    return (ssize_t)sent;
}
