/*
 * WRONG: no multiplexing.  Reads a command, sends it, waits for its reply, and only
 * then reads stdin again -- so while nobody types, nothing the server sends (not even
 * its close) is noticed.
 */
#include "common.h"

#include <signal.h>

#define REPLY_MAX (1u << 20)

static void print_one_reply(int sock, char *reply)
{
    ssize_t n = read_frame(sock, reply, REPLY_MAX);
    if (n == FRAME_EOF) {
        printf("server closed\n");
        exit(0);
    }
    if (n < 0)
        fatal(errno, "read");
    fwrite(reply, 1, (size_t)n, stdout);
    fflush(stdout);
}

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

    char line[4096];
    while (fgets(line, sizeof(line), stdin) != NULL && strcmp(line, "quit\n") != 0) {
        if (strcmp(line, "\n") == 0)
            continue;
        if (writen(sock, line, strlen(line)) < 0)
            fatal(errno, "write");
        print_one_reply(sock, reply);
    }
    shutdown(sock, SHUT_WR);
    for (;;)
        print_one_reply(sock, reply);
}
