/*
 * A correct stream-server written differently from the solution: its own address
 * code, a stop flag set by handlers installed without SA_RESTART (so accept and read
 * fail with EINTR), its own line assembly over read(), and send(MSG_NOSIGNAL) instead
 * of ignoring SIGPIPE.  It prints the peer's credentials with other types and formats.
 */
#include "common.h"

#include <signal.h>
#include <sys/stat.h>

static volatile sig_atomic_t stop;

static void request_stop(int sig)
{
    (void)sig;
    stop = 1;
}

static socklen_t make_address(struct sockaddr_un *a, const char *name)
{
    size_t n = strlen(name);
    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    if (n + 1 > sizeof(a->sun_path))
        fatal(0, "name too long: '%s'", name);
    if (name[0] == '@') {
        memcpy(a->sun_path + 1, name + 1, n - 1);
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    }
    strcpy(a->sun_path, name);
    return sizeof(*a);
}

/* Returns 0 when the client is gone (EOF, error) or a stop was requested. */
static int serve(int conn)
{
    char buf[4096];
    size_t have = 0;
    for (;;) {
        char *nl;
        while ((nl = memchr(buf, '\n', have)) != NULL) {
            *nl = '\0';
            if (nl > buf && nl[-1] == '\r')  /* a \r\n line end: the \r is not text */
                nl[-1] = '\0';
            printf("Receive: %s\n", buf);
            char out[4200];
            int len = snprintf(out, sizeof(out), "Hi, %s\n", buf);
            if (send(conn, out, (size_t)len, MSG_NOSIGNAL) != len)
                return 0;
            size_t used = (size_t)(nl - buf) + 1;
            memmove(buf, nl + 1, have - used);
            have -= used;
        }
        if (have == sizeof(buf))
            return 0;
        ssize_t n = read(conn, buf + have, sizeof(buf) - have);
        if (n < 0 && errno == EINTR && !stop)
            continue;
        if (n <= 0)
            return 0;
        have += (size_t)n;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s NAME", argv[0]);
    const char *name = argv[1];
    int file = name[0] != '@';

    struct sigaction sa = {0};
    sa.sa_handler = request_stop;      /* sa_flags 0: no SA_RESTART */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct sockaddr_un addr;
    socklen_t len = make_address(&addr, name);
    struct stat st;
    if (file && lstat(name, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            fatal(0, "refusing to remove '%s': not a socket", name);
        unlink(name);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, len) < 0)
        fatal(errno, "bind");
    if (listen(fd, 8) < 0)
        fatal(errno, "listen");
    printf("listening on %s\n", name);

    while (!stop) {
        int conn = accept(fd, NULL, NULL);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (file)
                unlink(name);
            fatal(errno, "accept");
        }
        struct ucred who;
        socklen_t wl = sizeof(who);
        if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &who, &wl) == 0)
            printf("client pid %d uid %u\n", (int)who.pid, (unsigned)who.uid);
        serve(conn);
        close(conn);
        if (!stop)
            printf("client quit\n");
    }
    close(fd);
    if (file)
        unlink(name);
    return 0;
}
