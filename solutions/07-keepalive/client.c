/*
 * client HOST PORT [IDLE_MS INTERVAL_MS COUNT] - an application heartbeat.
 *
 * After IDLE_MS without a frame from the server, send PING #1; then one more PING
 * every INTERVAL_MS while nothing comes back; after COUNT unanswered PINGs and one
 * more INTERVAL_MS of silence, declare the connection dead and exit 1.  Any complete
 * frame from the server proves it alive: the count starts again from zero and the
 * next PING waits a full IDLE_MS.
 *
 * Reference solution for chapter 07.
 */
#include <poll.h>
#include <time.h>

#include "common.h"

enum { MSG_PING = 1, MSG_PONG = 2, MSG_DATA = 3 };
#define PAYLOAD_SIZE 32

struct message {
    uint32_t type;                  /* network byte order on the wire */
    char payload[PAYLOAD_SIZE];
};
_Static_assert(sizeof(struct message) == 36, "a frame is 36 bytes, no padding");

/* Bytes of the frame being received; a frame may arrive in several pieces. */
struct frame_buffer {
    size_t have;
    unsigned char bytes[sizeof(struct message)];
};

static long parse_number_or_die(const char *text, const char *what, long min)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > 3600000)
        fatal(0, "invalid %s '%s'", what, text);
    return value;
}

static long long now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
        fatal(errno, "clock_gettime");
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is readable or the deadline passes.  Returns 1 if readable, 0 if not. */
static int wait_readable(int fd, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int rc = poll(&p, 1, left > 0 ? (int)left : 0);
        if (rc > 0)
            return 1;
        if (rc == 0)
            return 0;
        if (errno != EINTR)
            fatal(errno, "poll");
    }
}

static void send_ping(int fd, unsigned number)
{
    struct message ping;
    memset(&ping, 0, sizeof(ping));
    ping.type = htonl(MSG_PING);
    snprintf(ping.payload, sizeof(ping.payload), "ping %u", number);
    if (writen(fd, &ping, sizeof(ping)) < 0)
        fatal(errno, "write");
}

/*
 * Read what is there, up to the end of the current frame.  Returns 1 when a whole
 * frame is in *msg (and the buffer is emptied for the next one), 0 if not yet.
 */
static int receive_some(int fd, struct frame_buffer *fb, struct message *msg)
{
    ssize_t n = read(fd, fb->bytes + fb->have, sizeof(fb->bytes) - fb->have);
    if (n < 0) {
        if (errno == EINTR)
            return 0;
        fatal(errno, "read");
    }
    if (n == 0)
        fatal(0, "server closed the connection");
    fb->have += (size_t)n;
    if (fb->have < sizeof(fb->bytes))
        return 0;
    memcpy(msg, fb->bytes, sizeof(*msg));
    fb->have = 0;
    return 1;
}

static void handle(const struct message *msg)
{
    uint32_t type = ntohl(msg->type);
    switch (type) {
    case MSG_PONG:
        printf("pong received\n");
        break;
    case MSG_DATA:
        printf("data %.*s\n", (int)strnlen(msg->payload, PAYLOAD_SIZE), msg->payload);
        break;
    default:
        fatal(0, "unknown message type %u", type);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 6)
        fatal(0, "usage: %s HOST PORT [IDLE_MS INTERVAL_MS COUNT]", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);
    long idle_ms = argc == 6 ? parse_number_or_die(argv[3], "IDLE_MS", 1) : 3000;
    long interval_ms = argc == 6 ? parse_number_or_die(argv[4], "INTERVAL_MS", 1) : 1000;
    unsigned count = argc == 6 ? (unsigned)parse_number_or_die(argv[5], "COUNT", 1) : 3;

    int fd = tcp_connect_or_die(argv[1], port);

    struct frame_buffer fb = { .have = 0 };
    unsigned unanswered = 0;
    long long deadline = now_ms() + idle_ms;

    for (;;) {
        if (!wait_readable(fd, deadline)) {
            /* The timer ran out with no sign of life. */
            if (unanswered == count) {
                printf("connection dead\n");
                exit(1);
            }
            unanswered++;
            printf("sending ping #%u\n", unanswered);
            send_ping(fd, unanswered);
            deadline = now_ms() + interval_ms;
            continue;
        }
        struct message msg;
        if (receive_some(fd, &fb, &msg)) {
            handle(&msg);
            /* Any whole frame proves the peer alive: start over. */
            unanswered = 0;
            deadline = now_ms() + idle_ms;
        }
    }
}
