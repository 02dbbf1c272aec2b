/* echo_libuv PORT - the same echo server on libuv, one thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

struct write_req {
    uv_write_t req;
    uv_buf_t buf;
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void on_closed(uv_handle_t *h)
{
    free(h);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    struct write_req *w = (struct write_req *)req;
    free(w->buf.base);
    free(w);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    if (n > 0) {
        struct write_req *w = malloc(sizeof *w);
        w->buf = uv_buf_init(buf->base, (unsigned)n);
        uv_write(&w->req, s, &w->buf, 1, on_written);
        return;
    }
    free(buf->base);
    if (n < 0)
        uv_close((uv_handle_t *)s, on_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    uv_tcp_t *client = malloc(sizeof *client);
    uv_tcp_init(server->loop, client);
    if (uv_accept(server, (uv_stream_t *)client) == 0)
        uv_read_start((uv_stream_t *)client, on_alloc, on_read);
    else
        uv_close((uv_handle_t *)client, on_closed);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 1;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t server;
    struct sockaddr_in addr;
    uv_tcp_init(loop, &server);
    uv_ip4_addr("0.0.0.0", atoi(argv[1]), &addr);
    int err = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    if (!err)
        err = uv_listen((uv_stream_t *)&server, 1024, on_connection);
    if (err) {
        fprintf(stderr, "listen: %s\n", uv_strerror(err));
        return 1;
    }
    printf("listening on %s\n", argv[1]);
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
