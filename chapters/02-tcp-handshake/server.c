/*
 * server PORT [BACKLOG [no-accept]] - listen with the given backlog; then either
 * serve clients one after another (count what each sends until it half-closes,
 * answer with the count) or, with no-accept, never call accept() at all so the
 * kernel's accept queue can be watched filling up.  See README.md, "Contract".
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
    /* TODO: read() in a loop and add up what each call returns.  One read returns
     * whatever has arrived so far -- one byte or many segments -- so a single call
     * says nothing about how much the client will send.  Only read() == 0 (the
     * client's FIN) means "that was all".  EINTR: read again; other errors:
     * return -1 (errno tells why). */
    (void)conn;
    TODO("count_until_eof: the read loop");
}

/* One client from accept to close: count, report, answer. */
static void serve(int conn, const char *who)
{
    long long total = count_until_eof(conn);
    if (total < 0) {
        /* One client's failure is not the server's: say so and carry on. */
        warning(errno, "read from %s", who);
        return;
    }
    /* TODO: print "client WHO sent N bytes" on stdout, then send the client
     * "received N bytes\n" (writen() writes it all).  If that write fails, warn
     * and return: the client may already be gone. */
    TODO("serve: report and answer");
}

static void accept_loop(int listen_fd)
{
    for (;;) {
        /* TODO: accept() the next connection and keep the client's address;
         * format_addr() turns it into "IP:PORT" for serve().  Then serve it and
         * close the accepted socket -- never the listening one.  accept() fails
         * with EINTR or ECONNABORTED for reasons that are not ours: try again. */
        (void)listen_fd;
        TODO("accept_loop");
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

    /* TODO: listen on 0.0.0.0:PORT with BACKLOG as listen()'s second argument
     * (tcp_listen_or_die does socket, SO_REUSEADDR, bind and listen), then print
     *     listening on 0.0.0.0:PORT backlog BACKLOG
     * with the port the socket really has (local_port()). */
    int listen_fd = -1;
    (void)port;
    (void)backlog;
    TODO("listen with the backlog and say so");

    if (argc == 4) {
        /* no-accept: do nothing at all.  The kernel still answers SYNs and queues
         * the finished connections for an accept() that never comes. */
        for (;;)
            pause();
    }
    accept_loop(listen_fd);
}
