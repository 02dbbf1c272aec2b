/*
 * net.c - the TCP set-up every program repeats: parse a port, listen, connect,
 * and switch a socket to non-blocking mode.
 */
#include "common.h"

#include <ctype.h>
#include <fcntl.h>
#include <poll.h>

uint16_t parse_port_or_die(const char *text)
{
    char *end;
    unsigned long value;

    /* strtoul alone would accept " 80", "+80" and even "-1" (wrapped). */
    if (text == NULL || !isdigit((unsigned char)text[0]))
        fatal(0, "invalid port '%s'", text != NULL ? text : "");
    errno = 0;
    value = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || value > 65535)
        fatal(0, "invalid port '%s'", text);
    return (uint16_t)value;
}

int tcp_listen_or_die(const char *host, uint16_t port, int backlog)
{
    struct sockaddr_storage ss;
    const char *text = host != NULL ? host : "0.0.0.0";
    int len = fill_sockaddr(&ss, text, port);
    int fd;
    int on = 1;

    if (len < 0)
        fatal(0, "invalid address '%s'", text);
    fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    /* Restarting a server must not fail while old connections sit in TIME_WAIT. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0)
        fatal(errno, "setsockopt SO_REUSEADDR");
    if (bind(fd, (struct sockaddr *)&ss, (socklen_t)len) < 0)
        fatal(errno, "bind");
    if (listen(fd, backlog) < 0)
        fatal(errno, "listen");
    return fd;
}

/*
 * A connect() interrupted by a signal goes on in the background, and calling it
 * again would only say EALREADY: wait until it is done and fetch its result.
 */
static int finish_connect(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };
    int err = 0;
    socklen_t len = sizeof(err);

    while (poll(&pfd, 1, -1) < 0) {
        if (errno != EINTR)
            return -1;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -1;
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

int tcp_connect_or_die(const char *host, uint16_t port)
{
    struct sockaddr_storage ss;
    int len = host != NULL ? fill_sockaddr(&ss, host, port) : -1;
    int fd;

    if (len < 0)
        fatal(0, "invalid address '%s'", host != NULL ? host : "");
    fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    if (connect(fd, (struct sockaddr *)&ss, (socklen_t)len) < 0) {
        if (errno != EINTR || finish_connect(fd) < 0)
            fatal(errno, "connect");
    }
    return fd;
}

int make_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0)
        return -1;
    if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -1;
    return 0;
}
