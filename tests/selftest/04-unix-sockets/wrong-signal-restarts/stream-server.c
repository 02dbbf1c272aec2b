/*
 * Wrong on purpose: the SIGINT/SIGTERM handler only sets a flag, installed with
 * signal(), which on glibc means SA_RESTART: accept() and read() are restarted after
 * the handler, so the loop never sees the flag and the server never stops.
 */
#include "common.h"
#include "unixlab.h"

#include <signal.h>

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void serve_client(int conn)
{
    struct line_reader lr;
    char line[1024], reply[1100];

    line_reader_init(&lr, conn);
    while (!stopping) {
        ssize_t n = read_line(&lr, line, sizeof(line));
        if (n <= 0)
            break;
        line[strcspn(line, "\n")] = '\0';
        printf("Receive: %s\n", line);
        int len = snprintf(reply, sizeof(reply), "Hi, %s\n", line);
        if (writen(conn, reply, (size_t)len) < 0)
            break;
    }
    printf("client quit\n");
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s NAME", argv[0]);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    struct sockaddr_un addr;
    socklen_t len = unix_address(&addr, argv[1]);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    remove_stale_socket(argv[1]);
    if (bind(fd, (struct sockaddr *)&addr, len) < 0 || listen(fd, 16) < 0)
        fatal(errno, "bind");
    printf("listening on %s\n", argv[1]);

    while (!stopping) {
        int conn = accept(fd, NULL, NULL);
        if (conn < 0)
            continue;
        serve_client(conn);
        close(conn);
    }
    unlink(argv[1]);
    return 0;
}
