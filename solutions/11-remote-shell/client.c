/*
 * client HOST PORT - the remote shell's terminal: sends each command line typed on
 * stdin to the server and prints each reply, while watching both at once, so a
 * server that closes is noticed even while nobody types.
 *
 * Requests are lines; each reply is one length-prefixed frame (lib's read_frame).
 * `quit` (or the end of stdin) half-closes the connection; the client exits once the
 * server has closed its side too.  See README.md, "Contract".
 *
 * Reference solution for chapter 11.
 */
#include "common.h"

#include <poll.h>
#include <signal.h>

#define COMMAND_MAX 4096                /* longest command line, '\n' included */
#define REPLY_MAX (1u << 20)            /* longest reply payload: 1 MiB */

/*
 * Lines from stdin, read with plain read() into our own buffer.  (stdio's fgets
 * would read ahead into a buffer poll() knows nothing about: lines sitting there
 * would never wake poll up.)
 */
struct input {
    char buf[COMMAND_MAX];
    size_t len;
    int discarding;                     /* skipping the rest of an overlong line */
    int eof;
};

enum { KEEP_GOING, QUIT };

/* Send one command line to the server, newline included. */
static void send_command(int sock, const char *cmd, size_t len)
{
    char line[COMMAND_MAX + 1];
    memcpy(line, cmd, len);
    line[len] = '\n';
    if (writen(sock, line, len + 1) < 0)
        fatal(errno, "write");
}

/* Handle one complete line (without '\n').  Returns QUIT for `quit`. */
static int handle_line(int sock, char *text, size_t len)
{
    if (len > 0 && text[len - 1] == '\r')
        len--;
    if (len == 0)
        return KEEP_GOING;              /* an empty line is not a command */
    if (len == 4 && memcmp(text, "quit", 4) == 0)
        return QUIT;
    send_command(sock, text, len);
    return KEEP_GOING;
}

/* Read what stdin has and handle every complete line.  Returns QUIT at quit or EOF. */
static int read_input(struct input *in, int sock)
{
    ssize_t n = read(STDIN_FILENO, in->buf + in->len, sizeof(in->buf) - in->len);
    if (n < 0) {
        if (errno == EINTR)
            return KEEP_GOING;
        fatal(errno, "read stdin");
    }
    if (n == 0)
        in->eof = 1;
    in->len += (size_t)n;

    size_t start = 0;
    char *nl;
    while ((nl = memchr(in->buf + start, '\n', in->len - start)) != NULL) {
        size_t end = (size_t)(nl - in->buf);
        int skip = in->discarding;
        in->discarding = 0;
        if (!skip && handle_line(sock, in->buf + start, end - start) == QUIT)
            return QUIT;
        start = end + 1;
    }
    memmove(in->buf, in->buf + start, in->len - start);
    in->len -= start;

    if (in->eof) {                      /* a last line without '\n' still counts */
        if (!in->discarding && in->len > 0 && handle_line(sock, in->buf, in->len) == QUIT)
            return QUIT;
        return QUIT;
    }
    if (in->len == sizeof(in->buf)) {
        warning(0, "command longer than %d bytes ignored", COMMAND_MAX - 1);
        in->len = 0;
        in->discarding = 1;
    }
    return KEEP_GOING;
}

/* Receive one whole reply and print it as it is.  Exits when the server has closed. */
static void print_reply(int sock, char *reply)
{
    ssize_t n = read_frame(sock, reply, REPLY_MAX);
    if (n == FRAME_EOF) {
        printf("server closed\n");
        exit(0);
    }
    if (n < 0) {
        if (errno == EMSGSIZE)
            fatal(0, "reply longer than %u bytes", REPLY_MAX);
        if (errno == EPROTO)
            fatal(0, "server closed in the middle of a reply");
        fatal(errno, "read");
    }
    if (fwrite(reply, 1, (size_t)n, stdout) != (size_t)n)
        fatal(errno, "fwrite");
    if (fflush(stdout) == EOF)
        fatal(errno, "fflush");
}

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s HOST PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);

    /* A server that died is reported by the write that fails, not by a silent death. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        fatal(errno, "signal");

    int sock = tcp_connect_or_die(argv[1], port);
    char *reply = malloc(REPLY_MAX);
    if (reply == NULL)
        fatal(errno, "malloc");

    static struct input in;
    int typing = 1;                     /* still reading commands from stdin */
    for (;;) {
        struct pollfd fds[2] = {
            { .fd = sock, .events = POLLIN },
            { .fd = STDIN_FILENO, .events = POLLIN },
        };
        if (poll(fds, typing ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            fatal(errno, "poll");
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR))
            print_reply(sock, reply);
        if (typing && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            if (read_input(&in, sock) == QUIT) {
                /* "No more commands": FIN to the server, keep reading its replies. */
                if (shutdown(sock, SHUT_WR) < 0)
                    fatal(errno, "shutdown");
                typing = 0;
            }
        }
    }
}
