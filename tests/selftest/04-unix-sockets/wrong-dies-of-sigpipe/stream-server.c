/* Wrong on purpose (see expect.json): SIGPIPE left at its default action */
/*
 * stream-server NAME - a Unix stream echo server: answers each line with "Hi, <line>",
 * one client after another, and removes its socket file when it stops.
 *
 * Reference solution for chapter 04.
 */
#include "common.h"
#include "unixlab.h"

#include <signal.h>

static int listen_unix(const char *name)
{
    struct sockaddr_un addr;
    socklen_t len = unix_address(&addr, name);

    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    remove_stale_socket(name);
    if (bind(fd, (struct sockaddr *)&addr, len) < 0)
        fatal(errno, "bind");
    remove_on_exit(name);
    if (listen(fd, 16) < 0)
        fatal(errno, "listen");
    return fd;
}

/* Who is on the other end?  The kernel recorded the peer's credentials at connect(). */
static void print_peer(int conn)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        fatal(errno, "getsockopt SO_PEERCRED");
    printf("client pid %ld uid %ld\n", (long)cred.pid, (long)cred.uid);
}

/* Echo lines until the client leaves; a client that cannot be written to is gone too. */
static void serve_client(int conn)
{
    struct line_reader lr;
    char line[1024];
    char reply[sizeof(line) + 8];

    line_reader_init(&lr, conn);
    for (;;) {
        ssize_t n = read_line(&lr, line, sizeof(line));
        if (n == 0)
            break;
        if (n < 0) {
            warning(errno, "read");
            break;
        }
        line[strcspn(line, "\n")] = '\0';
        printf("Receive: %s\n", line);
        int len = snprintf(reply, sizeof(reply), "Hi, %s\n", line);
        if (writen(conn, reply, (size_t)len) < 0) {
            warning(errno, "write");
            break;
        }
    }
    printf("client quit\n");
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s NAME", argv[0]);
    /* A client that vanishes must cost us one failed write (EPIPE), not our life. */
    if (0)                                      /* wrong: SIGPIPE left at its default */
        fatal(errno, "signal");

    int listen_fd = listen_unix(argv[1]);
    printf("listening on %s\n", argv[1]);

    for (;;) {
        int conn = accept(listen_fd, NULL, NULL);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fatal(errno, "accept");
        }
        print_peer(conn);
        serve_client(conn);
        if (close(conn) < 0)
            warning(errno, "close");
    }
}
