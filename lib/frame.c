/*
 * frame.c - length-prefixed messages: [uint32 length, network order][payload].
 * TCP keeps no message boundaries; the prefix puts them back.
 */
#include "common.h"

#include <sys/uio.h>

/*
 * Like readn, but for a frame: a non-blocking fd that runs dry mid-frame is an
 * error (EAGAIN) rather than a short count, so a short count always means EOF.
 */
static ssize_t read_exact(int fd, void *buf, size_t n)
{
    char *p = buf;
    size_t got = 0;

    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0)
            break;
        else if (errno != EINTR)
            return -1;
    }
    return (ssize_t)got;
}

int write_frame(int fd, const void *payload, uint32_t len)
{
    uint32_t header = htonl(len);
    /* One writev so header and payload normally leave in one segment. */
    struct iovec iov[2] = {
        { .iov_base = &header, .iov_len = sizeof(header) },
        { .iov_base = (void *)payload, .iov_len = len },  /* writev only reads it */
    };
    struct iovec *v = iov;
    int count = len > 0 ? 2 : 1;

    while (count > 0) {
        ssize_t w = writev(fd, v, count);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;                    /* no progress and no error: don't spin */
            return -1;
        }
        /* Short write: skip the iovecs already sent, trim the partial one. */
        size_t done = (size_t)w;
        while (count > 0 && done >= v->iov_len) {
            done -= v->iov_len;
            v++;
            count--;
        }
        if (count > 0) {
            v->iov_base = (char *)v->iov_base + done;
            v->iov_len -= done;
        }
    }
    return 0;
}

ssize_t read_frame(int fd, void *buf, size_t cap)
{
    unsigned char header[FRAME_HEADER_SIZE];
    uint32_t len;
    ssize_t r;

    r = read_exact(fd, header, sizeof(header));
    if (r < 0)
        return -1;
    if (r == 0)
        return FRAME_EOF;
    if ((size_t)r < sizeof(header)) {
        errno = EPROTO;                     /* closed inside the header */
        return -1;
    }
    memcpy(&len, header, sizeof(len));
    len = ntohl(len);

    /* Refuse before reading: a bogus length must not make us wait for data. */
    if (len > cap) {
        errno = EMSGSIZE;
        return -1;
    }
    r = read_exact(fd, buf, len);
    if (r < 0)
        return -1;
    if ((size_t)r < len) {
        errno = EPROTO;                     /* closed inside the payload */
        return -1;
    }
    return (ssize_t)len;
}
