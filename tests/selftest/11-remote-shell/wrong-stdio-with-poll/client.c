/*
 * WRONG: poll()s stdin and the socket, but reads stdin through stdio.  fgets() reads
 * ahead: when several lines arrive together, the later ones wait in stdio's buffer,
 * where poll() cannot see them, so they are sent only when more input (or EOF) comes.
 */
#include "common.h"

#include <poll.h>
#include <signal.h>

#define REPLY_MAX (1u << 20)

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s HOST PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);
    signal(SIGPIPE, SIG_IGN);
    int sock = tcp_connect_or_die(argv[1], port);
    char *reply = malloc(REPLY_MAX);
    if (reply == NULL)
        fatal(errno, "malloc");

    int typing = 1;
    char line[4096];
    for (;;) {
        struct pollfd fds[2] = { { sock, POLLIN, 0 }, { STDIN_FILENO, POLLIN, 0 } };
        if (poll(fds, typing ? 2 : 1, -1) < 0)
            fatal(errno, "poll");
        if (fds[0].revents) {
            ssize_t n = read_frame(sock, reply, REPLY_MAX);
            if (n == FRAME_EOF) {
                printf("server closed\n");
                return 0;
            }
            if (n < 0)
                fatal(errno, "read");
            fwrite(reply, 1, (size_t)n, stdout);
            fflush(stdout);
        }
        if (typing && fds[1].revents) {
            if (fgets(line, sizeof(line), stdin) == NULL || strcmp(line, "quit\n") == 0) {
                shutdown(sock, SHUT_WR);
                typing = 0;
                continue;
            }
            if (strcmp(line, "\n") != 0 && writen(sock, line, strlen(line)) < 0)
                fatal(errno, "write");
        }
    }
}
