/* linesrv PORT [THREADS] [BACKEND] - a line-based command server on the reactor library.
 *
 *   echo TEXT       -> TEXT
 *   where           -> loop K tid T
 *   after MS TEXT   -> TEXT, MS milliseconds later (a timer; other commands go on meanwhile)
 *   cancel          -> cancelled N: the N pending `after` timers of this connection are off
 *   big N           -> N bytes of "abc...z" repeated, then a newline
 *   quit            -> bye, then FIN once everything queued has been sent
 *
 * The client's FIN does not cut pending `after` replies short (on_eof): they are still
 * sent, and the FIN follows the last one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "reactor.h"

#define MAX_LINE 4096
#define MAX_BIG (64u << 20)

static uint16_t port;

/* One pending `after`: its arg, owned by the session's list until the timer is over. */
struct pending {
    struct session *s;              /* NULL once off the list */
    rx_timer_id id;
    struct pending *prev, *next;
    char text[];
};

/* A connection's state (c->user): its pending timers, and whether its client is done. */
struct session {
    struct pending *timers;
    bool eof;
};

static void reply(struct rx_conn *c, const char *text)
{
    rx_conn_send(c, text, strlen(text));
    rx_conn_send(c, "\n", 1);
}

static void send_big(struct rx_conn *c, size_t n)
{
    char chunk[4096];
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (char)('a' + i % 26);
    /* byte i of the reply is 'a' + i % 26: start each piece where the pattern stands */
    size_t sent = 0;
    while (sent < n) {
        size_t off = sent % 26;
        size_t len = n - sent < sizeof chunk - 26 ? n - sent : sizeof chunk - 26;
        rx_conn_send(c, chunk + off, len);
        sent += len;
    }
    rx_conn_send(c, "\n", 1);
}

static void unlink_pending(struct pending *p)
{
    if (p->s == NULL)
        return;
    if (p->prev)
        p->prev->next = p->next;
    else
        p->s->timers = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->s = NULL;
}

/* The timer's finalizer: it ran or was cancelled (by `cancel` or by the close). */
static void timer_done(void *arg)
{
    unlink_pending(arg);
    free(arg);
}

static void timer_reply(struct rx_conn *c, void *arg)
{
    struct pending *p = arg;
    unlink_pending(p);
    reply(c, p->text);
    struct session *s = c->user;    /* a failed send closes c: then on_close freed s */
    if (rx_conn_is_writable(c) && s->eof && s->timers == NULL)
        rx_conn_shutdown(c);        /* the client is done and so are we */
}

static void start_timer(struct rx_conn *c, unsigned ms, const char *text)
{
    size_t len = strlen(text) + 1;
    struct pending *p = calloc(1, sizeof *p + len);
    if (p == NULL)
        fatal(errno, "calloc");
    memcpy(p->text, text, len);
    struct session *s = c->user;
    p->s = s;
    p->next = s->timers;
    if (s->timers)
        s->timers->prev = p;
    s->timers = p;
    rx_timer_id id = rx_conn_timer(c, ms, timer_reply, timer_done, p);
    if (id != 0)                    /* 0: c was closed, timer_done freed p already */
        p->id = id;
}

static void cancel_timers(struct rx_conn *c)
{
    struct session *s = c->user;
    unsigned n = 0;
    for (struct pending *p = s->timers, *next; p; p = next) {
        next = p->next;             /* timer_done frees p and takes it off the list */
        if (rx_timer_cancel(c->loop, p->id) == 0)
            n++;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "cancelled %u", n);
    reply(c, buf);
}

static void command(struct rx_conn *c, char *line)
{
    char buf[64];
    if (strncmp(line, "echo ", 5) == 0) {
        reply(c, line + 5);
    } else if (strcmp(line, "where") == 0) {
        snprintf(buf, sizeof buf, "loop %d tid %d", rx_loop_id(c->loop), gettid());
        reply(c, buf);
    } else if (strncmp(line, "after ", 6) == 0) {
        char *text;
        unsigned long ms = strtoul(line + 6, &text, 10);
        if (text == line + 6 || *text != ' ' || ms > 60000) {
            reply(c, "error: usage: after MS TEXT");
            return;
        }
        start_timer(c, (unsigned)ms, text + 1);
    } else if (strcmp(line, "cancel") == 0) {
        cancel_timers(c);
    } else if (strncmp(line, "big ", 4) == 0) {
        char *end;
        unsigned long n = strtoul(line + 4, &end, 10);
        if (end == line + 4 || *end != '\0' || n > MAX_BIG) {
            reply(c, "error: usage: big N (N <= 67108864)");
            return;
        }
        send_big(c, n);
    } else if (strcmp(line, "quit") == 0) {
        reply(c, "bye");
        rx_conn_shutdown(c);
    } else {
        reply(c, "error: unknown command");
    }
}

static void on_open(struct rx_conn *c)
{
    c->user = calloc(1, sizeof(struct session));
    if (c->user == NULL)
        fatal(errno, "calloc");
    printf("open %lu loop %d tid %d\n", c->id, rx_loop_id(c->loop), gettid());
}

/* Only whole lines are consumed; a partial line waits in `in` for the rest. */
static void on_data(struct rx_conn *c, struct rx_buffer *in)
{
    char line[MAX_LINE + 1];
    if (!rx_conn_is_writable(c)) {      /* after `quit` or an error: nothing more is read */
        rx_buf_consume(in, rx_buf_len(in));
        return;
    }
    while (rx_conn_is_writable(c)) {
        const char *start = rx_buf_peek(in);
        size_t len = rx_buf_len(in);
        const char *nl = memchr(start, '\n', len);
        if (nl == NULL) {
            if (len > MAX_LINE) {
                reply(c, "error: line too long");
                rx_conn_shutdown(c);
            }
            return;
        }
        size_t n = (size_t)(nl - start);
        if (n > MAX_LINE) {
            reply(c, "error: line too long");
            rx_conn_shutdown(c);
            return;
        }
        memcpy(line, start, n);
        line[n] = '\0';
        if (n > 0 && line[n - 1] == '\r')
            line[n - 1] = '\0';
        rx_buf_consume(in, n + 1);
        command(c, line);
    }
}

/* The client half-closed: answer what is still pending, then our FIN (the library's
 * default would send the FIN at once, and the close would cancel the timers). */
static void on_eof(struct rx_conn *c)
{
    struct session *s = c->user;
    printf("eof %lu\n", c->id);
    s->eof = true;
    if (s->timers == NULL)
        rx_conn_shutdown(c);
}

static void on_drain(struct rx_conn *c)
{
    printf("drained %lu\n", c->id);
}

/* The last callback: its timers are cancelled already (their finalizers ran). */
static void on_close(struct rx_conn *c)
{
    printf("close %lu\n", c->id);
    free(c->user);
    c->user = NULL;
}

static const struct rx_callbacks callbacks = {
    .on_open = on_open,
    .on_data = on_data,
    .on_eof = on_eof,
    .on_drain = on_drain,
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
    const struct rx_backend *backend = rx_backend_by_name(argc > 3 ? argv[3] : "epoll");
    if (threads < 0 || threads > 64 || backend == NULL) {
        fprintf(stderr, "usage: %s PORT [THREADS 0..64] [poll|epoll]\n", argv[0]);
        return 1;
    }
    struct rx_server *srv = rx_server_new(port, threads, backend, &callbacks);
    rx_server_run(srv, on_ready);
    printf("bye\n");
    return 0;
}
