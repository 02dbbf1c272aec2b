/*
 * client HOST PORT - the remote shell's terminal: sends each command line typed on
 * stdin to the server and prints each reply, while watching both at once, so a
 * server that closes is noticed even while nobody types.
 *
 * Requests are lines; each reply is one length-prefixed frame (lib's read_frame).
 * `quit` (or the end of stdin) half-closes the connection; the client exits once the
 * server has closed its side too.  See README.md, "Contract".
 *
 * Your part: read_input, print_reply and the loop in main.
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
    /* TODO: ONE read() of stdin into in->buf after the in->len bytes already there
     * (poll said it will not block; a second read might).  0 means EOF: set in->eof.
     * Then hand every complete line (up to a '\n', without it) to handle_line and
     * return QUIT as soon as it does; keep the unfinished tail for next time
     * (memmove it to the front).  At EOF, a last line without '\n' still counts, and
     * then it is QUIT anyway.  If the buffer is full without a '\n', warn, drop it
     * and set in->discarding so the rest of that line is skipped too. */
    (void)in;
    (void)sock;
    TODO("read_input");
}

/* Receive one whole reply and print it as it is.  Exits when the server has closed. */
static void print_reply(int sock, char *reply)
{
    /* TODO: read_frame(sock, reply, REPLY_MAX) waits for the whole frame, however
     * it was split.  FRAME_EOF: the server closed -- print `server closed`, exit 0.
     * -1: EMSGSIZE (too long) / EPROTO (cut short) / other: fatal with a message.
     * Otherwise write the payload to stdout exactly as it is (fwrite: it is bytes,
     * not a C string, and may be empty), then fflush(stdout). */
    (void)sock;
    (void)reply;
    TODO("print_reply");
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
    (void)sock;
    (void)typing;
    /* TODO: the loop.  Wait with poll() (or select) on the socket AND, while typing,
     * stdin -- never block on only one of them, or a server that closes while
     * nobody types goes unnoticed.
     *   socket readable (POLLIN, or POLLHUP/POLLERR) -> print_reply.
     *   stdin readable -> read_input; on QUIT: shutdown(sock, SHUT_WR) -- the FIN
     *   tells the server we are done while we keep reading its replies (close()
     *   would lose them) -- and stop polling stdin (at EOF it is readable forever).
     * The loop ends inside print_reply, when the server closes. */
    TODO("poll loop");
}
