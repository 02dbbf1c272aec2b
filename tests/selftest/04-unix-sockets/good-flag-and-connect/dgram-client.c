/*
 * A correct dgram-client written differently from the solution: it connect()s its
 * datagram socket to SERVER and uses send/recv, and removes CLIENT by hand on every
 * way out instead of with atexit().
 */
#include "common.h"

#include <sys/stat.h>

static const char *me_path;

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

    struct stat st;
    if (lstat(me_path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(me_path);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0)
        fatal(errno, "socket");
    if (bind(fd, (struct sockaddr *)&me, me_len) < 0)
        fatal(errno, "bind");

    char line[2048], reply[2049];
    int connected = 0;
    while (fgets(line, sizeof(line), stdin) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (!connected) {
            if (connect(fd, (struct sockaddr *)&server, server_len) < 0)
                die("connect");
            connected = 1;
        }
        if (send(fd, line, strlen(line), 0) < 0)
            die("send");
        ssize_t n = recv(fd, reply, sizeof(reply) - 1, 0);
        if (n < 0)
            die("recv");
        reply[n] = '\0';
        printf("%s\n", reply);
    }
    unlink(me_path);
    return 0;
}
