/*
 * Self-test case: a correct server written differently from the solution --
 * recv(MSG_WAITALL), frames as byte arrays, usleep for the delay, SIGPIPE avoided
 * with MSG_NOSIGNAL.
 */
#include "common.h"

#define FRAME_BYTES 36
#define MAX_DELAY_MS 3600000L

/*
 * 1: a whole frame; 0: the client left cleanly; -1: recv failed (errno says why);
 * -2: the client left part-way through a frame (*got bytes of it came).
 */
static int next_frame(int conn, unsigned char *frame, size_t *got)
{
    *got = 0;
    while (*got < FRAME_BYTES) {
        ssize_t n = recv(conn, frame + *got, FRAME_BYTES - *got, MSG_WAITALL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return *got == 0 ? 0 : -2;
        *got += (size_t)n;
    }
    return 1;
}

/* DELAY_MS: digits only, 0..MAX_DELAY_MS; anything else ends the program. */
static long delay_arg(const char *text)
{
    char *rest;
    errno = 0;
    long ms = strtol(text, &rest, 10);
    if (rest == text || *rest != '\0' || errno == ERANGE || ms < 0 || ms > MAX_DELAY_MS)
        fatal(0, "invalid DELAY_MS '%s'", text);
    return ms;
}

/* usleep() in slices of under a second: the longest delay does not fit one call. */
static void pause_ms(long ms)
{
    while (ms > 0) {
        long slice = ms > 500 ? 500 : ms;
        usleep((useconds_t)(slice * 1000));
        ms -= slice;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3)
        fatal(0, "usage: %s PORT [DELAY_MS]", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);
    long delay = argc == 3 ? delay_arg(argv[2]) : 0;
    int lfd = tcp_listen_or_die("0.0.0.0", port, 8);
    printf("listening on %d\n", local_port(lfd));
    for (;;) {
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof(from);
        int conn = accept(lfd, (struct sockaddr *)&from, &fromlen);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fatal(errno, "accept");
        }
        char name[ADDR_STRLEN];
        printf("connection from %s\n", format_addr((struct sockaddr *)&from, fromlen, name, sizeof(name)));
        unsigned char frame[FRAME_BYTES];
        size_t got;
        int rc;
        while ((rc = next_frame(conn, frame, &got)) == 1) {
            uint32_t type;
            memcpy(&type, frame, 4);
            type = ntohl(type);
            if (type == 1) {
                puts("ping received");
                pause_ms(delay);
                uint32_t pong = htonl(2);
                memcpy(frame, &pong, 4);
                /* MSG_NOSIGNAL: a client that is gone yields EPIPE, not SIGPIPE */
                ssize_t sent = send(conn, frame, FRAME_BYTES, MSG_NOSIGNAL);
                if (sent != FRAME_BYTES) {
                    if (sent < 0)
                        warning(errno, "send");
                    else
                        warning(0, "send: only %zd of %d bytes of the PONG went out", sent, FRAME_BYTES);
                    break;
                }
            } else if (type == 3) {
                printf("data %.32s\n", (char *)frame + 4);
            } else if (type != 2) {
                warning(0, "unknown message type %u", type);
                break;
            }
        }
        if (rc == 0)
            puts("client closed");
        else if (rc == -1)
            warning(errno, "recv");
        else if (rc == -2)
            warning(0, "client left in the middle of a frame (%zu of %d bytes)", got, FRAME_BYTES);
        close(conn);
    }
}
