/*
 * udpserver PORT - answer every datagram with "Hi, <payload>", sent back to whoever
 * sent it; on SIGINT, say how many datagrams arrived and exit 0.
 *
 * Reference solution for chapter 03.
 */
#include <signal.h>

#include "common.h"

/* The largest payload a UDP/IPv4 datagram can carry: 65535 - 20 (IP) - 8 (UDP). */
#define MAX_PAYLOAD 65507
#define PREFIX "Hi, "

/* Set by the SIGINT handler, read by the main loop: the only thing the handler does. */
static volatile sig_atomic_t interrupted;

static void on_sigint(int signo)
{
    (void)signo;
    interrupted = 1;
}

/*
 * Without SA_RESTART, a signal that arrives while recvfrom() sleeps makes it fail
 * with EINTR, so the loop gets to look at the flag.  (glibc's signal() sets
 * SA_RESTART, and recvfrom would quietly go back to sleep.)
 */
static void catch_sigint(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    if (sigaction(SIGINT, &sa, NULL) < 0)
        fatal(errno, "sigaction");
}

static int udp_bind_or_die(uint16_t port)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons(port);

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        fatal(errno, "bind");
    return fd;
}

/* "received N bytes: " and the payload's bytes as they are (NUL bytes too: it is not a
 * C string, so no %s), then a newline. */
static void print_received(const char *payload, ssize_t n)
{
    printf("received %zd bytes: ", n);
    if (fwrite(payload, 1, (size_t)n, stdout) != (size_t)n || putchar('\n') == EOF)
        fatal(errno, "printing");
}

/* Build "Hi, <payload>" in reply (not a string: no NUL is sent) and send it back. */
static void reply(int fd, const char *payload, size_t len,
                  const struct sockaddr *to, socklen_t to_len)
{
    static char out[sizeof(PREFIX) - 1 + MAX_PAYLOAD];
    size_t prefix_len = sizeof(PREFIX) - 1;
    size_t room = sizeof(out) - prefix_len;
    size_t n = len < room ? len : room;

    memcpy(out, PREFIX, prefix_len);
    memcpy(out + prefix_len, payload, n);
    if (sendto(fd, out, prefix_len + n, 0, to, to_len) < 0)
        warning(errno, "sendto");   /* one client's trouble must not stop the server */
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
        struct sockaddr_storage from;
        socklen_t from_len = sizeof(from);     /* in: room; out: size used */
        ssize_t n = recvfrom(fd, payload, sizeof(payload), 0,
                             (struct sockaddr *)&from, &from_len);
        if (n < 0) {
            if (errno == EINTR)
                continue;                      /* the loop condition sees the flag */
            fatal(errno, "recvfrom");
        }
        count++;
        print_received(payload, n);
        reply(fd, payload, (size_t)n, (struct sockaddr *)&from, from_len);
    }
    printf("received %ld datagrams\n", count);
    return 0;
}
