/*
 * dgram-server NAME - a Unix datagram server: answers each datagram with "Hi, <text>"
 * sent back to the sender's address, and removes its socket file when it stops.
 *
 * Reference solution for chapter 04.
 */
#include "common.h"
#include "unixlab.h"

#define MAX_DATAGRAM 2048

static int bind_unix_dgram(const char *name)
{
    struct sockaddr_un addr;
    socklen_t len = unix_address(&addr, name);

    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    remove_stale_socket(name);
    if (bind(fd, (struct sockaddr *)&addr, len) < 0)
        fatal(errno, "bind");
    remove_on_exit(name);
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s NAME", argv[0]);

    int fd = bind_unix_dgram(argv[1]);
    printf("listening on %s\n", argv[1]);

    char text[MAX_DATAGRAM + 1];
    char reply[sizeof("Hi, ") - 1 + MAX_DATAGRAM];
    for (;;) {
        struct sockaddr_un from;
        socklen_t from_len = sizeof(from);      /* in: room we have; out: what it used */
        ssize_t n = recvfrom(fd, text, MAX_DATAGRAM, 0, (struct sockaddr *)&from, &from_len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fatal(errno, "recvfrom");
        }
        text[n] = '\0';                         /* 0 bytes is a valid (empty) datagram */
        printf("Receive: %s\n", text);

        if (from_len <= offsetof(struct sockaddr_un, sun_path)) {
            printf("cannot reply: the client has no address\n");
            continue;
        }
        /* The datagram's bytes exactly: a NUL inside is data, not the end (no "%s"). */
        memcpy(reply, "Hi, ", 4);
        memcpy(reply + 4, text, (size_t)n);
        if (sendto(fd, reply, 4 + (size_t)n, 0, (struct sockaddr *)&from, from_len) < 0)
            warning(errno, "sendto");           /* that client is gone: serve the next */
    }
}
