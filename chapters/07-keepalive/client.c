/*
 * client HOST PORT [IDLE_MS INTERVAL_MS COUNT] - an application heartbeat.
 * See README.md, "Contract".
 *
 * After IDLE_MS without a frame from the server, send PING #1; then one more PING
 * every INTERVAL_MS while nothing comes back; after COUNT unanswered PINGs and one
 * more INTERVAL_MS of silence, declare the connection dead and exit 1.  Any complete
 * frame from the server proves it alive: the count starts again from zero and the
 * next PING waits a full IDLE_MS.
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

/* Milliseconds on a clock that never jumps (unlike the time of day). */
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
    /* TODO: poll() the one descriptor for POLLIN with the time left until deadline
     * (never negative).  A signal can interrupt poll (EINTR): wait again for what is
     * left, not for the whole timeout. */
    (void)fd;
    (void)deadline;
    TODO("wait_readable");
}

static void send_ping(int fd, unsigned number)
{
    /* TODO: a PING frame: type in network byte order, any payload you like (e.g.
     * "ping 3"; zero the rest so no stack garbage goes on the wire).  Send all of it. */
    (void)fd;
    (void)number;
    TODO("send_ping");
}

/*
 * Read what is there, up to the end of the current frame.  Returns 1 when a whole
 * frame is in *msg (and the buffer is emptied for the next one), 0 if not yet.
 */
static int receive_some(int fd, struct frame_buffer *fb, struct message *msg)
{
    /* TODO: one read() into the rest of fb (never past the frame's end).  It may
     * return only part of a frame: keep it and say "not yet".  EOF means the server
     * went away: fatal(0, "server closed the connection").  Why not readn() here?
     * It would block until the frame is complete, and the heartbeat timer with it. */
    (void)fd;
    (void)fb;
    (void)msg;
    TODO("receive_some");
}

static void handle(const struct message *msg)
{
    /* TODO: by type (in host order!): PONG prints "pong received"; DATA prints
     * "data <payload text>"; anything else: fatal(0, "unknown message type %u", t). */
    (void)msg;
    TODO("handle");
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
            /* TODO: the timer ran out with no sign of life.  If COUNT PINGs are
             * already unanswered, print "connection dead" and exit 1.  Otherwise
             * count one more, print "sending ping #N", send it, and set the next
             * deadline INTERVAL_MS from now. */
            (void)interval_ms;
            (void)count;
            TODO("the heartbeat timer");
            continue;
        }
        struct message msg;
        if (receive_some(fd, &fb, &msg)) {
            handle(&msg);
            /* TODO: a whole frame proves the server alive.  What happens to the
             * count of unanswered PINGs, and when should the next PING go? */
            TODO("a sign of life");
        }
    }
}
