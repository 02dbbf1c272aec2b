/* A correct sender written differently: send(MSG_NOSIGNAL) and stdio input. */
#include "common.h"

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s HOST PORT", argv[0]);
    int fd = tcp_connect_or_die(argv[1], parse_port_or_die(argv[2]));
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;

    while ((got = getline(&line, &cap, stdin)) > 0) {
        size_t len = (size_t)got, off = 0;     /* the count, not strlen: NUL bytes are data */
        while (off < len) {
            ssize_t w = send(fd, line + off, len - off, MSG_NOSIGNAL);
            if (w < 0)
                fatal(errno, "write");
            off += (size_t)w;
        }
    }
    free(line);
    close(fd);
    return 0;
}
