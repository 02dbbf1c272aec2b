/* A correct sender written differently: send(MSG_NOSIGNAL) and stdio input. */
#include "common.h"

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s HOST PORT", argv[0]);
    int fd = tcp_connect_or_die(argv[1], parse_port_or_die(argv[2]));
    char line[2048];

    while (fgets(line, sizeof(line), stdin) != NULL) {
        size_t len = strlen(line), off = 0;
        while (off < len) {
            ssize_t w = send(fd, line + off, len - off, MSG_NOSIGNAL);
            if (w < 0)
                fatal(errno, "write");
            off += (size_t)w;
        }
    }
    close(fd);
    return 0;
}
