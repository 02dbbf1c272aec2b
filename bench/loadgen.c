/*
 * loadgen - a closed-loop echo load generator (epoll, one thread).
 *
 *   loadgen PORT CONNS SECONDS [SIZE]      each connection sends SIZE bytes (default 64),
 *                                          waits for all of them back, repeats; prints
 *                                          requests, requests/s, p50/p99 latency in us
 *   loadgen PORT CONNS SECONDS idle        opens CONNS connections, sends nothing, prints
 *                                          "connected N", holds them SECONDS, exits
 *
 * Connections come from 127.0.0.1 .. 127.0.0.8 in turn (bind before connect), so the
 * ephemeral port range is never the limit.  Everything is bounded by SECONDS.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_US 2000000              /* latency histogram: 1 us buckets up to 2 s */

struct conn {
    int fd;
    size_t sent, got;
    uint64_t t0;
    int connected;
};

static uint32_t *histogram;
static uint64_t overflow;

static void die(const char *what)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(1);
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int open_conn(uint16_t port, int i)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001 + (uint32_t)(i % 8))};
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0)
        die("bind");
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS)
        die("connect");
    return fd;
}

static uint64_t percentile(uint64_t total, double p)
{
    uint64_t want = (uint64_t)(p * (double)total), seen = 0;
    for (uint64_t us = 0; us < MAX_US; us++) {
        seen += histogram[us];
        if (seen > want)
            return us;
    }
    return MAX_US;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s PORT CONNS SECONDS [SIZE|idle]\n", argv[0]);
        return 1;
    }
    uint16_t port = (uint16_t)atoi(argv[1]);
    int nconn = atoi(argv[2]);
    double seconds = atof(argv[3]);
    int idle = argc == 5 && strcmp(argv[4], "idle") == 0;
    size_t size = argc == 5 && !idle ? (size_t)atoi(argv[4]) : 64;
    if (nconn < 1 || seconds <= 0 || size < 1 || size > 65536) {
        fprintf(stderr, "usage: %s PORT CONNS SECONDS [SIZE|idle]\n", argv[0]);
        return 1;
    }
    raise_nofile();
    histogram = calloc(MAX_US, sizeof *histogram);
    struct conn *conns = calloc((size_t)nconn, sizeof *conns);
    char *msg = malloc(size), *buf = malloc(65536);
    if (!histogram || !conns || !msg || !buf)
        die("calloc");
    memset(msg, 'x', size);

    int ep = epoll_create1(0);
    if (ep < 0)
        die("epoll_create1");
    uint64_t start = now_us(), deadline = start + (uint64_t)(seconds * 1e6);
    for (int i = 0; i < nconn; i++) {
        conns[i].fd = open_conn(port, i);
        struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) < 0)
            die("epoll_ctl");
    }

    int connected = 0;
    uint64_t requests = 0, measure_from = 0;
    struct epoll_event events[512];
    while (now_us() < deadline) {
        int n = epoll_wait(ep, events, 512, 100);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int k = 0; k < n; k++) {
            struct conn *c = &conns[events[k].data.u32];
            if (events[k].events & (EPOLLERR | EPOLLHUP)) {
                fprintf(stderr, "loadgen: connection %u failed\n", events[k].data.u32);
                return 1;
            }
            if (!c->connected) {
                c->connected = 1;
                if (++connected == nconn) {
                    measure_from = now_us();
                    if (idle)
                        printf("connected %d\n", nconn), fflush(stdout);
                }
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = events[k].data.u32};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                if (idle)
                    continue;
                c->t0 = now_us();
                if (write(c->fd, msg, size) != (ssize_t)size)
                    die("write");
                continue;
            }
            ssize_t r = read(c->fd, buf, 65536);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                fprintf(stderr, "loadgen: server closed a connection\n");
                return 1;
            }
            c->got += (size_t)r;
            if (c->got < size)
                continue;
            uint64_t t = now_us();
            if (measure_from && c->t0 >= measure_from) {
                uint64_t lat = t - c->t0;
                if (lat < MAX_US)
                    histogram[lat]++;
                else
                    overflow++;
                requests++;
            }
            c->got = 0;
            c->t0 = t;
            if (write(c->fd, msg, size) != (ssize_t)size)
                die("write");
        }
    }
    if (!idle) {
        double span = (double)(now_us() - (measure_from ? measure_from : start)) / 1e6;
        uint64_t total = requests;
        printf("conns %d requests %llu rps %.0f p50_us %llu p99_us %llu\n", nconn,
               (unsigned long long)requests, span > 0 ? (double)requests / span : 0.0,
               (unsigned long long)(total ? percentile(total, 0.50) : 0),
               (unsigned long long)(total ? percentile(total, 0.99) : 0));
    } else if (connected < nconn) {
        fprintf(stderr, "loadgen: only %d of %d connections established\n", connected, nconn);
        return 1;
    }
    return 0;
}
