/*
 * udpserver PORT - answer every datagram with "Hi, <payload>", sent back to whoever
 * sent it; on SIGINT (Ctrl-C) print how many datagrams arrived and exit 0.
 * See README.md, "Contract".
 */
#include <signal.h>

#include "common.h"

/* The largest payload a UDP/IPv4 datagram can carry: 65535 - 20 (IP) - 8 (UDP). */
#define MAX_PAYLOAD 65507
#define PREFIX "Hi, "

/* Set by the SIGINT handler, read by the main loop. */
static volatile sig_atomic_t interrupted;

static void on_sigint(int signo)
{
    (void)signo;
    /* TODO: only set the flag.  A handler may run in the middle of printf or malloc:
     * calling them (or exit) from here is not async-signal-safe. */
    TODO("on_sigint: set the flag");
}

/* Install on_sigint for SIGINT so that a recvfrom() in progress fails with EINTR. */
static void catch_sigint(void)
{
    /* TODO: sigaction() with sa_flags = 0.  Why not signal()?  glibc's signal() asks
     * for SA_RESTART, and then the kernel restarts recvfrom() after the handler: the
     * loop would never get to look at the flag. */
    TODO("catch_sigint: sigaction without SA_RESTART");
}

/* A UDP socket bound to 0.0.0.0:port.  No listen(), no accept(): there are no
 * connections to wait for, only datagrams. */
static int udp_bind_or_die(uint16_t port)
{
    /* TODO: socket(AF_INET, SOCK_DGRAM, 0) and bind() to INADDR_ANY:port.  Report a
     * failure by the call's name, e.g. fatal(errno, "bind"). */
    TODO("udp_bind_or_die: socket, bind");
}

/* "received N bytes: " and the payload's bytes as they are (NUL bytes too: it is not a
 * C string, so no %s), then a newline. */
static void print_received(const char *payload, ssize_t n)
{
    printf("received %zd bytes: ", n);
    if (fwrite(payload, 1, (size_t)n, stdout) != (size_t)n || putchar('\n') == EOF)
        fatal(errno, "printing");
}

/* Send "Hi, " followed by exactly the len bytes of payload back to `to`. */
static void reply(int fd, const char *payload, size_t len,
                  const struct sockaddr *to, socklen_t to_len)
{
    /* TODO: build the reply in a buffer and sendto() it.  It is bytes, not a C string:
     * send 4 + len bytes, no NUL and no newline.  If sendto() fails, warn() and go on:
     * one client's trouble must not stop the server. */
    TODO("reply: sendto");
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);

    int fd = udp_bind_or_die(port);
    catch_sigint();
    printf("bound to 0.0.0.0:%d\n", local_port(fd));

    static char payload[MAX_PAYLOAD];
    long count = 0;
    while (!interrupted) {
        /* TODO: recvfrom() one datagram and the address it came from.  The length
         * argument is in/out: set it to the size of your address buffer before EVERY
         * call.  EINTR means a signal arrived: go round the loop so the condition sees
         * the flag.  recvfrom() does not NUL-terminate and 0 is a valid length (an
         * empty datagram).  Count it, print_received() it, reply(). */
        (void)payload;
        (void)count;
        TODO("recvfrom loop");
    }
    printf("received %ld datagrams\n", count);
    return 0;
}
