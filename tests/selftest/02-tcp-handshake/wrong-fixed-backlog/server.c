/*
 * server PORT [BACKLOG [no-accept]] - listen with the given backlog; then either
 * serve clients one after another (count what each sends until it half-closes,
 * answer with the count) or, with no-accept, never call accept() at all so the
 * kernel's accept queue can be watched filling up.
 *
 * Self-test case: always listens with backlog 128, whatever BACKLOG says (and prints the argument)
 */
#include "common.h"

#include <limits.h>
#include <signal.h>

#define DEFAULT_BACKLOG 16

static int parse_backlog_or_die(const char *text)
{
    char *end;
    long value;

    if (text[0] < '0' || text[0] > '9')
        fatal(0, "invalid backlog '%s'", text);
    errno = 0;
    value = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || value > INT_MAX)
        fatal(0, "invalid backlog '%s'", text);
    return (int)value;
}

/*
 * Read until the client's FIN.  Returns the number of bytes, or -1 if the
 * connection failed first (e.g. ECONNRESET: the client aborted).
 */
static long long count_until_eof(int conn)
{
    char buf[65536];
    long long total = 0;

    for (;;) {
        ssize_t n = read(conn, buf, sizeof(buf));
        if (n > 0) {
            total += n;
        } else if (n == 0) {
            return total;
        } else if (errno != EINTR) {
            return -1;
        }
    }
}

/* One client from accept to close: count, report, answer. */
static void serve(int conn, const char *who)
{
    long long total = count_until_eof(conn);
    if (total < 0) {
        warning(errno, "read from %s", who);
        return;
    }
    printf("client %s sent %lld bytes\n", who, total);

    char reply[64];
    int len = snprintf(reply, sizeof(reply), "received %lld bytes\n", total);
    if (writen(conn, reply, (size_t)len) < 0)
        warning(errno, "write to %s", who);
}

static void accept_loop(int listen_fd)
{
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof(peer);
        int conn = accept(listen_fd, (struct sockaddr *)&peer, &peer_len);
        if (conn < 0) {
            /* the connection died in the queue, or a signal: neither is our failure */
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fatal(errno, "accept");
        }
        char who[ADDR_STRLEN];
        format_addr((struct sockaddr *)&peer, peer_len, who, sizeof(who));
        serve(conn, who);
        if (close(conn) < 0)
            warning(errno, "close");
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4 || (argc == 4 && strcmp(argv[3], "no-accept") != 0))
        fatal(0, "usage: %s PORT [BACKLOG [no-accept]]", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);
    int backlog = argc >= 3 ? parse_backlog_or_die(argv[2]) : DEFAULT_BACKLOG;

    /* A client that vanishes before our reply must cost one warning, not the server. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        fatal(errno, "signal");

    int listen_fd = tcp_listen_or_die(NULL, port, 128);
    printf("listening on 0.0.0.0:%d backlog %d\n", local_port(listen_fd), backlog);

    if (argc == 4) {
        /* Handshakes still complete: the kernel does them and queues the result. */
        for (;;)
            pause();
    }
    accept_loop(listen_fd);
}
