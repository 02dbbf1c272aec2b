/*
 * A correct client written differently: select() instead of poll(), frames read with
 * readn() (header, then payload), stdin read one byte at a time with read(2), MSG_NOSIGNAL.
 */
#include "common.h"

#include <sys/select.h>

static char line[4096];
static size_t line_len;

static void send_line(int sock)
{
    if (line_len == 0)
        return;
    line[line_len++] = '\n';
    size_t off = 0;
    while (off < line_len) {
        ssize_t w = send(sock, line + off, line_len - off, MSG_NOSIGNAL);
        if (w < 0)
            fatal(errno, "send");
        off += (size_t)w;
    }
}

/* Returns 1 when the user is done (quit or EOF). */
static int on_stdin(int sock)
{
    char ch;
    ssize_t r = read(0, &ch, 1);
    if (r < 0)
        fatal(errno, "read");
    if (r == 0 || ch == '\n') {
        int done = r == 0;
        if (line_len == 4 && memcmp(line, "quit", 4) == 0)
            done = 1;
        else
            send_line(sock);
        line_len = 0;
        return done;
    }
    if (line_len < sizeof(line) - 1)
        line[line_len++] = ch;
    return 0;
}

static void on_socket(int sock)
{
    uint32_t head;
    ssize_t n = readn(sock, &head, 4);
    if (n == 0) {
        puts("server closed");
        exit(0);
    }
    if (n != 4)
        fatal(n < 0 ? errno : 0, "reply header");
    uint32_t len = ntohl(head);
    char *buf = malloc(len + 1);
    if (!buf)
        fatal(errno, "malloc");
    if (readn(sock, buf, len) != (ssize_t)len)
        fatal(errno, "reply");
    fwrite(buf, 1, len, stdout);
    fflush(stdout);
    free(buf);
}

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s HOST PORT", argv[0]);
    int sock = tcp_connect_or_die(argv[1], parse_port_or_die(argv[2]));
    int input_open = 1;
    for (;;) {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(sock, &rd);
        if (input_open)
            FD_SET(0, &rd);
        if (select(sock + 1, &rd, NULL, NULL, NULL) < 0)
            fatal(errno, "select");
        if (FD_ISSET(sock, &rd))
            on_socket(sock);
        if (input_open && FD_ISSET(0, &rd) && on_stdin(sock)) {
            if (shutdown(sock, SHUT_WR) < 0)
                fatal(errno, "shutdown");
            input_open = 0;
        }
    }
}
