/*
 * server PORT [DELAY_MS] - answer every PING with a PONG (after DELAY_MS), print DATA
 * frames, and drop a client that sends a type it does not know.  See README.md,
 * "Contract".
 *
 * Wire format: 36-byte frames, a 4-byte type in network byte order followed by a
 * 32-byte payload.
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

/* Reply to a PING: same payload, type PONG.  Returns 0, or -1 on error. */
static int send_pong(int conn, const struct message *ping)
{
    /* TODO: build a PONG that carries the PING's payload unchanged.  The type field
     * travels in network byte order, like every multi-byte number on the wire: a
     * receiver on any machine must read 00 00 00 02.  Send all 36 bytes (writen). */
    (void)conn;
    (void)ping;
    TODO("send_pong");
}

/* Handle one client's frames until it leaves or misbehaves. */
static void serve(int conn, long delay_ms)
{
    for (;;) {
        struct message msg;
        /* TODO: receive exactly one 36-byte frame.  TCP is a byte stream: a frame can
         * arrive in several pieces, or glued to the next one, so one read() is not
         * one frame.  EOF before the first byte: print "client closed" and return.
         * EOF in the middle of a frame, or an error: warn and return. */
        (void)msg;
        (void)delay_ms;
        TODO("serve: read one whole frame");

        /* TODO: turn the type into host order, then:
         *   PING  print "ping received", wait delay_ms, answer with send_pong();
         *   DATA  print "data <payload text>" (the payload is NUL-padded, not
         *         NUL-terminated when it is 32 bytes long: bound the print);
         *   PONG  ignore it;
         *   other warning(0, "unknown message type %u", type) and return, which
         *         closes this client's connection (the server keeps running). */
        TODO("serve: dispatch on the type");
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3)
        fatal(0, "usage: %s PORT [DELAY_MS]", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);
    long delay_ms = argc == 3 ? parse_count_or_die(argv[2], "DELAY_MS") : 0;

    /* A client may vanish while we are answering: let write fail with EPIPE instead
     * of killing the server. */
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
