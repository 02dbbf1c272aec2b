/*
 * server PORT [DELAY_MS] - answer every PING with a PONG (after DELAY_MS), print DATA
 * frames, and drop a client that sends a type it does not know.
 *
 * Reference solution for chapter 07.  Wire format: 36-byte frames, a 4-byte type in
 * network byte order followed by a 32-byte payload.
 */
#include <signal.h>
#include <time.h>

#include "common.h"

enum { MSG_PING = 1, MSG_PONG = 2, MSG_DATA = 3 };
#define PAYLOAD_SIZE 32

struct message {
    uint32_t type;                  /* network byte order on the wire */
    char payload[PAYLOAD_SIZE];     /* PING/PONG: opaque; DATA: text, NUL-padded */
};
_Static_assert(sizeof(struct message) == 36, "a frame is 36 bytes, no padding");

static long parse_count_or_die(const char *text, const char *what)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < 0 || value > 3600000)
        fatal(0, "invalid %s '%s'", what, text);
    return value;
}

static void sleep_ms(long ms)
{
    struct timespec left = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&left, &left) < 0) {
        if (errno != EINTR)
            fatal(errno, "nanosleep");
    }
}

/* Reply to a PING: same payload, type PONG in network byte order.  0, or -1 on error. */
static int send_pong(int conn, const struct message *ping)
{
    struct message pong;
    pong.type = htonl(MSG_PONG);
    memcpy(pong.payload, ping->payload, sizeof(pong.payload));
    return writen(conn, &pong, sizeof(pong)) < 0 ? -1 : 0;
}

/* Handle one client's frames until it leaves or misbehaves. */
static void serve(int conn, long delay_ms)
{
    for (;;) {
        struct message msg;
        /* A frame may arrive in pieces, or glued to the next: always read exactly one. */
        ssize_t n = readn(conn, &msg, sizeof(msg));
        if (n < 0) {
            warning(errno, "read");
            return;
        }
        if (n == 0) {
            printf("client closed\n");
            return;
        }
        if ((size_t)n < sizeof(msg)) {
            warning(0, "truncated frame (%zd of %zu bytes)", n, sizeof(msg));
            return;
        }

        uint32_t type = ntohl(msg.type);
        switch (type) {
        case MSG_PING:
            printf("ping received\n");
            if (delay_ms > 0)
                sleep_ms(delay_ms);
            if (send_pong(conn, &msg) < 0) {
                warning(errno, "write");
                return;
            }
            break;
        case MSG_DATA:
            printf("data %.*s\n", (int)strnlen(msg.payload, PAYLOAD_SIZE), msg.payload);
            break;
        case MSG_PONG:
            break;      /* nobody asked, but it is harmless */
        default:
            warning(0, "unknown message type %u", type);
            return;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3)
        fatal(0, "usage: %s PORT [DELAY_MS]", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);
    long delay_ms = argc == 3 ? parse_count_or_die(argv[2], "DELAY_MS") : 0;

    /* A client may vanish while we are answering: let write fail with EPIPE instead. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        fatal(errno, "signal");

    int listen_fd = tcp_listen_or_die(NULL, port, 16);
    printf("listening on %d\n", local_port(listen_fd));

    for (;;) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        int conn = accept(listen_fd, (struct sockaddr *)&peer, &len);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fatal(errno, "accept");
        }
        char who[ADDR_STRLEN];
        printf("connection from %s\n", format_addr((struct sockaddr *)&peer, len, who, sizeof(who)));
        serve(conn, delay_ms);
        if (close(conn) < 0)
            warning(errno, "close");
    }
}
