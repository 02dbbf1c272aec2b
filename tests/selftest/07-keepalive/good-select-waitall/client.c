/*
 * Self-test case: a correct client written differently from the solution --
 * select() with a timeval, frames decoded from a byte buffer that may hold several,
 * the heartbeat state in a struct.
 */
#include <sys/select.h>
#include <sys/time.h>
#include <time.h>

#include "common.h"

#define FRAME_BYTES 36

struct heartbeat {
    long idle_ms, interval_ms;
    unsigned limit, missed;
    struct timespec due;
};

static void due_in(struct heartbeat *hb, long ms)
{
    if (clock_gettime(CLOCK_MONOTONIC, &hb->due) < 0)
        fatal(errno, "clock_gettime");
    hb->due.tv_sec += ms / 1000;
    hb->due.tv_nsec += (ms % 1000) * 1000000L;
    if (hb->due.tv_nsec >= 1000000000L) {
        hb->due.tv_sec++;
        hb->due.tv_nsec -= 1000000000L;
    }
}

static struct timeval time_left(const struct heartbeat *hb)
{
    struct timespec now;
    if (clock_gettime(CLOCK_MONOTONIC, &now) < 0)
        fatal(errno, "clock_gettime");
    long long ns = (long long)(hb->due.tv_sec - now.tv_sec) * 1000000000LL + (hb->due.tv_nsec - now.tv_nsec);
    if (ns < 0)
        ns = 0;
    struct timeval tv = { (time_t)(ns / 1000000000LL), (suseconds_t)((ns % 1000000000LL) / 1000) };
    return tv;
}

static void beat(int fd, struct heartbeat *hb)
{
    if (hb->missed >= hb->limit) {
        puts("connection dead");
        exit(1);
    }
    hb->missed++;
    printf("sending ping #%u\n", hb->missed);
    unsigned char out[FRAME_BYTES] = { 0 };
    uint32_t type = htonl(1);
    memcpy(out, &type, 4);
    if (writen(fd, out, sizeof(out)) != (ssize_t)sizeof(out))
        fatal(errno, "write");
    due_in(hb, hb->interval_ms);
}

/* A timing argument: a whole number 1..3600000, or the program ends naming it. */
static long timing_arg(const char *text, const char *label)
{
    char *rest;
    errno = 0;
    long v = strtol(text, &rest, 10);
    if (rest == text || *rest != '\0' || errno == ERANGE || v < 1 || v > 3600000)
        fatal(0, "invalid %s '%s'", label, text);
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 6)
        fatal(0, "usage: %s HOST PORT [IDLE_MS INTERVAL_MS COUNT]", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);
    /* defaults when the timing is left out: 3000 ms idle, 1000 ms apart, 3 pings */
    struct heartbeat hb = { 3000, 1000, 3, 0, { 0, 0 } };
    if (argc == 6) {
        hb.idle_ms = timing_arg(argv[3], "IDLE_MS");
        hb.interval_ms = timing_arg(argv[4], "INTERVAL_MS");
        hb.limit = (unsigned)timing_arg(argv[5], "COUNT");
    }
    int fd = tcp_connect_or_die(argv[1], port);
    unsigned char buf[4 * FRAME_BYTES];
    size_t used = 0;
    due_in(&hb, hb.idle_ms);

    for (;;) {
        fd_set readable;
        FD_ZERO(&readable);
        FD_SET(fd, &readable);
        struct timeval tv = time_left(&hb);
        int rc = select(fd + 1, &readable, NULL, NULL, &tv);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            fatal(errno, "select");
        if (rc == 0) {
            beat(fd, &hb);
            continue;
        }
        ssize_t n = recv(fd, buf + used, sizeof(buf) - used, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fatal(errno, "read");
        if (n == 0)
            fatal(0, "server closed the connection");
        used += (size_t)n;
        size_t off = 0;
        for (; used - off >= FRAME_BYTES; off += FRAME_BYTES) {
            uint32_t type;
            memcpy(&type, buf + off, 4);
            type = ntohl(type);
            if (type == 2)
                puts("pong received");
            else if (type == 3)
                printf("data %.*s\n", (int)strnlen((char *)buf + off + 4, 32), (char *)buf + off + 4);
            else
                fatal(0, "unknown message type %u", type);
            hb.missed = 0;
            due_in(&hb, hb.idle_ms);
        }
        memmove(buf, buf + off, used - off);
        used -= off;
    }
}
