/*
 * dgram-client SERVER CLIENT - bind our own address CLIENT (so the server can answer),
 * send each stdin line as one datagram to SERVER, print each reply; at the end of
 * stdin remove CLIENT's socket file and exit 0.
 *
 * Reference solution for chapter 04.
 */
#include "common.h"
#include "unixlab.h"

#define MAX_DATAGRAM 2048

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s SERVER CLIENT", argv[0]);

    struct sockaddr_un server, me;
    socklen_t server_len = unix_address(&server, argv[1]);
    socklen_t me_len = unix_address(&me, argv[2]);

    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    remove_stale_socket(argv[2]);
    if (bind(fd, (struct sockaddr *)&me, me_len) < 0)
        fatal(errno, "bind");
    remove_on_exit(argv[2]);

    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    char reply[sizeof("Hi, ") - 1 + MAX_DATAGRAM];    /* the server's longest answer */
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        if (sendto(fd, line, (size_t)n, 0, (struct sockaddr *)&server, server_len) < 0)
            fatal(errno, "sendto");
        ssize_t got = recv(fd, reply, sizeof(reply), 0);
        if (got < 0)
            fatal(errno, "recv");
        if (fwrite(reply, 1, (size_t)got, stdout) != (size_t)got || putchar('\n') == EOF)
            fatal(errno, "write stdout");
    }
    free(line);
    return 0;                                   /* the atexit handler removes CLIENT */
}
