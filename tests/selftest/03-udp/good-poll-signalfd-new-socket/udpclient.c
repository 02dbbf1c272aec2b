/* A correct udpclient written differently: poll() for the timeout, read() and write()
 * on the connected socket, and the same recvfrom path for both modes. */
#include <poll.h>

#include "common.h"

#include <limits.h>

int main(int argc, char **argv)
{
    int connected = argc > 1 && strcmp(argv[1], "-c") == 0;
    char **a = argv + 1 + connected;
    int left = argc - 1 - connected;
    if (left != 2 && left != 3)
        fatal(0, "usage: udpclient [-c] HOST PORT [TIMEOUT_MS]");
    int timeout = 3000;
    if (left == 3) {
        char *end;
        long ms = strtol(a[2], &end, 10);
        if (end == a[2] || *end != '\0' || ms < 1 || ms > INT_MAX)
            fatal(0, "invalid timeout '%s'", a[2]);
        timeout = (int)ms;
    }

    struct sockaddr_storage to;
    int tolen = fill_sockaddr(&to, a[0], parse_port_or_die(a[1]));
    if (tolen < 0)
        fatal(0, "invalid address '%s'", a[0]);
    int fd = socket(to.ss_family, SOCK_DGRAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    if (connected && connect(fd, (struct sockaddr *)&to, (socklen_t)tolen) < 0)
        fatal(errno, "connect");

    char line[2048];
    static char reply[65536];
    while (fgets(line, sizeof(line), stdin)) {
        size_t len = strcspn(line, "\n");
        ssize_t sent = connected ? write(fd, line, len)
                                 : sendto(fd, line, len, 0, (struct sockaddr *)&to, (socklen_t)tolen);
        if (sent < 0)
            fatal(errno, connected ? "write" : "sendto");
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, timeout);
        if (r < 0)
            fatal(errno, "poll");
        if (r == 0) {
            printf("no reply within %d ms\n", timeout);
            continue;
        }
        ssize_t n = connected ? read(fd, reply, sizeof(reply)) : recvfrom(fd, reply, sizeof(reply), 0, NULL, NULL);
        if (n < 0)
            fatal(errno, connected ? "read" : "recvfrom");
        fwrite(reply, 1, (size_t)n, stdout);
        putchar('\n');
    }
    return 0;
}
