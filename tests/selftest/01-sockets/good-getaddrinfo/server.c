/* A correct server written differently: getaddrinfo, sockaddr_storage, dprintf, and a
 * graceful end through SO_RCVTIMEO instead of poll. */
#include "common.h"
#include <netdb.h>
#include <signal.h>
#include <sys/time.h>

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3)
        fatal(0, "usage: server PORT [ADDRESS]");
    parse_port_or_die(argv[1]);
    const char *host = argc == 3 ? argv[2] : "0.0.0.0";
    struct in_addr check;
    if (inet_pton(AF_INET, host, &check) != 1)    /* getaddrinfo would take "127.1" */
        fatal(0, "invalid address '%s'", host);
    signal(SIGPIPE, SIG_IGN);
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *ai;
    if (getaddrinfo(host, argv[1], &hints, &ai) != 0)
        fatal(0, "invalid address '%s'", host);
    int fd = socket(ai->ai_family, ai->ai_socktype, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        fatal(errno, "bind");
    freeaddrinfo(ai);
    if (listen(fd, SOMAXCONN) != 0)
        fatal(errno, "listen");
    printf("listening on %s:%d\n", host, local_port(fd));
    while (1) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int c = accept(fd, (struct sockaddr *)&ss, &len);
        if (c < 0)
            continue;
        char text[ADDR_STRLEN];
        format_addr((struct sockaddr *)&ss, len, text, sizeof(text));
        printf("connection from %s\n", text);
        if (dprintf(c, "hello %s\n", text) < 0)
            warning(errno, "dprintf");
        shutdown(c, SHUT_WR);
        struct timeval tv = {0, 300000};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        char sink[64];
        while (read(c, sink, sizeof(sink)) > 0)
            ;
        close(c);
    }
}
