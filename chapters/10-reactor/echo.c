/* echo PORT [THREADS] [BACKEND] - an echo server on the reactor library. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "reactor.h"

static uint16_t port;

static void on_open(struct rx_conn *c)
{
    printf("open %lu loop %d tid %d\n", c->id, rx_loop_id(c->loop), gettid());
}

static void on_data(struct rx_conn *c, struct rx_buffer *in)
{
    rx_conn_send(c, rx_buf_peek(in), rx_buf_len(in));
    rx_buf_consume(in, rx_buf_len(in));
}

static void on_close(struct rx_conn *c)
{
    printf("close %lu\n", c->id);
}

static const struct rx_callbacks callbacks = {
    .on_open = on_open,
    .on_data = on_data,
    .on_close = on_close,
};

static void on_ready(void)
{
    printf("listening on %u\n", port);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s PORT [THREADS] [poll|epoll]\n", argv[0]);
        return 1;
    }
    port = parse_port_or_die(argv[1]);
    int threads = argc > 2 ? atoi(argv[2]) : 0;
    const char *name = argc > 3 ? argv[3] : "epoll";
    const struct rx_backend *backend = rx_backend_by_name(name);
    if (threads < 0 || threads > 64 || backend == NULL) {
        fprintf(stderr, "usage: %s PORT [THREADS 0..64] [poll|epoll]\n", argv[0]);
        return 1;
    }
    struct rx_server *srv = rx_server_new(port, threads, backend, &callbacks);
    rx_server_run(srv, on_ready);
    printf("bye\n");
    return 0;
}
