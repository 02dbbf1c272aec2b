/* A correct talker written differently: byte-at-a-time reply reading, send with
 * MSG_NOSIGNAL, stdin through read_line. */
#include "common.h"

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s HOST PORT", argv[0]);
    int fd = tcp_connect_or_die(argv[1], parse_port_or_die(argv[2]));
    struct line_reader in;
    line_reader_init(&in, STDIN_FILENO);
    char line[1024];
    ssize_t n;

    while ((n = read_line(&in, line, sizeof(line))) > 0) {
        if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n)
            fatal(errno, "send");
        char c;
        int got = 0;
        for (;;) {
            ssize_t r = recv(fd, &c, 1, 0);
            if (r < 0)
                fatal(errno, "recv");
            if (r == 0) {
                if (got)
                    putchar('\n');
                puts("peer connection closed");
                return 0;
            }
            got = 1;
            putchar(c);
            if (c == '\n')
                break;
        }
    }
    return 0;
}
