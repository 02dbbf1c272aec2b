/*
 * A correct server written differently: scandir() with a filter for ls, requests read
 * byte by byte into a fixed buffer (no line_reader), header and payload sent with two
 * send(MSG_NOSIGNAL) calls instead of SIG_IGN + writev, and dprintf-free error text.
 */
#include "common.h"

#include <dirent.h>
#include <limits.h>

#define MAXREQ 4096
#define MAXREPLY (1 << 20)

static char reply[MAXREPLY];
static size_t reply_len;

static void put(const char *s, size_t n)
{
    if (reply_len + n > MAXREPLY)
        n = MAXREPLY - reply_len;
    memcpy(reply + reply_len, s, n);
    reply_len += n;
}

static void puts_error(const char *a, const char *b, const char *c)
{
    reply_len = 0;
    put("error: ", 7);
    put(a, strlen(a));
    if (b) { put(": ", 2); put(b, strlen(b)); }
    if (c) { put(": ", 2); put(c, strlen(c)); }
    put("\n", 1);
}

static int visible(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

static int bytewise(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void execute(char *req)
{
    reply_len = 0;
    if (!strcmp(req, "pwd")) {
        char p[PATH_MAX];
        if (!getcwd(p, sizeof p)) { puts_error("pwd", strerror(errno), NULL); return; }
        put(p, strlen(p));
        put("\n", 1);
    } else if (!strcmp(req, "ls")) {
        struct dirent **list;
        int n = scandir(".", &list, visible, bytewise);
        if (n < 0) { puts_error("ls", strerror(errno), NULL); return; }
        for (int i = 0; i < n; i++) {
            put(list[i]->d_name, strlen(list[i]->d_name));
            put("\n", 1);
            free(list[i]);
        }
        free(list);
    } else if (!strncmp(req, "cd ", 3) && req[3]) {
        if (chdir(req + 3) != 0)
            puts_error("cd", req + 3, strerror(errno));
    } else if (!strcmp(req, "cd") || !strcmp(req, "cd ")) {
        puts_error("cd", "missing directory", NULL);
    } else {
        reply_len = 0;
        put("error: unknown command '", 24);
        put(req, strlen(req));
        put("'\n", 2);
    }
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static void session(int fd)
{
    char req[MAXREQ];
    size_t len = 0;
    int too_long = 0;
    for (;;) {
        char ch;
        ssize_t r = recv(fd, &ch, 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return;
        if (ch != '\n') {
            if (len < MAXREQ - 1)
                req[len++] = ch;
            else
                too_long = 1;
            continue;
        }
        if (len > 0 && req[len - 1] == '\r')
            len--;
        req[len] = '\0';
        if (too_long)
            puts_error("request longer than 4095 bytes", NULL, NULL);
        else
            execute(req);
        len = 0;
        too_long = 0;
        uint32_t head = htonl((uint32_t)reply_len);
        if (send_all(fd, &head, 4) < 0 || send_all(fd, reply, reply_len) < 0) {
            warning(errno, "send");
            return;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s PORT", argv[0]);
    int lfd = tcp_listen_or_die(NULL, parse_port_or_die(argv[1]), 8);
    printf("listening on %d\n", local_port(lfd));
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fatal(errno, "accept");
        }
        printf("client connected\n");
        session(fd);
        close(fd);
        printf("client closed\n");
    }
}
