/*
 * threadsrv PORT - the rot13 service, one thread per connection.
 *
 * The main thread accepts; each connection gets a detached thread that serves it
 * and closes it.  See README.md, "Contract".
 *
 * Your part: start_thread and connection_thread.  serve() is written for you.
 */
#include "common.h"

#include <pthread.h>
#include <signal.h>

#define BUFSIZE 4096

static void rot13(char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = buf[i];
        if ((c >= 'a' && c <= 'm') || (c >= 'A' && c <= 'M'))
            buf[i] = (char)(c + 13);
        else if ((c >= 'n' && c <= 'z') || (c >= 'N' && c <= 'Z'))
            buf[i] = (char)(c - 13);
    }
}

/* Transform everything the client sends until it closes its side.  An error ends
 * this connection only: never exit() from a thread, it ends every thread. */
static void serve(int conn)
{
    char buf[BUFSIZE];
    for (;;) {
        ssize_t n = read(conn, buf, sizeof buf);
        if (n == 0)
            return;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            warning(errno, "read");
            return;
        }
        rot13(buf, (size_t)n);
        if (writen(conn, buf, (size_t)n) < 0) {
            warning(errno, "write");
            return;
        }
    }
}

static void *connection_thread(void *arg)
{
    /* TODO: get the fd back out of arg, serve the connection, and make sure the
     * socket is closed when the client is done (if not, it sits in CLOSE_WAIT and
     * the fd leaks).  Returning ends the thread. */
    (void)arg;
    (void)serve;
    TODO("serve the connection in its thread");
    return NULL;
}

static void start_thread(int conn)
{
    /* TODO: start a thread running connection_thread for this connection.  Pass
     * the fd by value (a pointer to main's variable would change under the thread's
     * feet at the next accept).  Nobody will join the thread: detach it.  pthread
     * functions return an error number instead of setting errno. */
    (void)conn;
    (void)connection_thread;
    TODO("start a thread for the connection");
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);

    signal(SIGPIPE, SIG_IGN);

    int listen_fd = tcp_listen_or_die(NULL, port, 128);
    printf("listening on %d\n", local_port(listen_fd));

    for (;;) {
        int conn = accept(listen_fd, NULL, NULL);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fatal(errno, "accept");
        }
        start_thread(conn);
    }
}
