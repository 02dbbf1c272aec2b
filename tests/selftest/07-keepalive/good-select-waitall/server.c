/*
 * Self-test case: a correct server written differently from the solution --
 * recv(MSG_WAITALL), frames as byte arrays, usleep for the delay, SIGPIPE avoided
 * with MSG_NOSIGNAL.
 */
#include "common.h"

#define FRAME_BYTES 36

/* 1: a whole frame; 0: the client left cleanly; -1: error or truncated frame. */
static int next_frame(int conn, unsigned char *frame)
{
    size_t got = 0;
    while (got < FRAME_BYTES) {
        ssize_t n = recv(conn, frame + got, FRAME_BYTES - got, MSG_WAITALL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return got == 0 ? 0 : -1;
        got += (size_t)n;
    }
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3)
        fatal(0, "usage: %s PORT [DELAY_MS]", argv[0]);
    long delay = argc == 3 ? atol(argv[2]) : 0;
    int lfd = tcp_listen_or_die("0.0.0.0", parse_port_or_die(argv[1]), 8);
    printf("listening on %d\n", local_port(lfd));
    for (;;) {
        int conn = accept(lfd, NULL, NULL);
        if (conn < 0)
            continue;
        unsigned char frame[FRAME_BYTES];
        int rc;
        while ((rc = next_frame(conn, frame)) == 1) {
            uint32_t type;
            memcpy(&type, frame, 4);
            type = ntohl(type);
            if (type == 1) {
                puts("ping received");
                usleep((useconds_t)delay * 1000);
                uint32_t pong = htonl(2);
                memcpy(frame, &pong, 4);
                if (send(conn, frame, FRAME_BYTES, MSG_NOSIGNAL) != FRAME_BYTES)
                    break;
            } else if (type == 3) {
                printf("data %.32s\n", (char *)frame + 4);
            } else if (type != 2) {
                fprintf(stderr, "unknown message type %u\n", type);
                break;
            }
        }
        if (rc == 0)
            puts("client closed");
        close(conn);
    }
}
