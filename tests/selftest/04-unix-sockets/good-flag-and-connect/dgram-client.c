/*
 * A correct dgram-client written differently from the solution: it connect()s its
 * datagram socket to SERVER and uses send/recv, and removes CLIENT by hand on every
 * way out instead of with atexit().
 */
#include "common.h"

#include <signal.h>
#include <sys/stat.h>

static const char *me_path;

/* SIGINT/SIGTERM: the same cleanup as any other way out (both calls async-signal-safe). */
static void on_signal(int sig)
{
    (void)sig;
    unlink(me_path);
    _exit(0);
}

static void die(const char *call)
{
    int e = errno;
    unlink(me_path);
    fatal(e, "%s", call);
}

static socklen_t fill(struct sockaddr_un *a, const char *path)
{
    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(a->sun_path))
        fatal(0, "path too long: %s", path);
    if (path[0] == '@') {                   /* abstract: a leading NUL, no terminator */
        memcpy(a->sun_path + 1, path + 1, strlen(path) - 1);
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
    }
    strcpy(a->sun_path, path);
    return sizeof(*a);
}

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s SERVER CLIENT", argv[0]);
    struct sockaddr_un server, me;
    socklen_t server_len = fill(&server, argv[1]);
    socklen_t me_len = fill(&me, argv[2]);
    me_path = argv[2];
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
        fatal(errno, "sigaction");

    struct stat st;
    if (me_path[0] != '@' && lstat(me_path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(me_path);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    if (bind(fd, (struct sockaddr *)&me, me_len) < 0)
        fatal(errno, "bind");

    char *line = NULL, reply[4 + 2048];            /* "Hi, " and the longest datagram */
    size_t cap = 0;
    ssize_t len;
    int connected = 0;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        if (line[len - 1] == '\n')
            len--;                                  /* the datagram is the line's bytes */
        if (!connected) {
            if (connect(fd, (struct sockaddr *)&server, server_len) < 0)
                die("connect");
            connected = 1;
        }
        if (send(fd, line, (size_t)len, 0) < 0)
            die("send");
        ssize_t n = recv(fd, reply, sizeof(reply), 0);
        if (n < 0)
            die("recv");
        fwrite(reply, 1, (size_t)n, stdout);
        putchar('\n');
    }
    free(line);
    unlink(me_path);
    return 0;
}
