/*
 * server PORT - a tiny remote shell: runs pwd, cd DIR and ls for one client at a
 * time, in its own working directory, which survives from one client to the next.
 *
 * Requests are lines; each reply is one length-prefixed frame (lib's write_frame).
 * The commands are carried out with getcwd, chdir and opendir -- never by a shell --
 * so nothing in a request is ever interpreted as shell syntax.
 * See README.md, "Contract".
 *
 * Your part: run_pwd, run_cd, run_ls, run_command and serve; and one decision
 * at the top of main.  The reply buffer helpers are done.
 */
#include "common.h"

#include <dirent.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <signal.h>

#define REQUEST_MAX 4096                /* longest request line, '\n' included */
#define REPLY_MAX (1u << 20)            /* longest reply payload: 1 MiB */

/* A growing reply payload.  Bounded by REPLY_MAX; a reply that would not fit is an error. */
struct reply {
    char *data;
    size_t len;
    size_t cap;
};

static void reply_reset(struct reply *r)
{
    r->len = 0;
}

/* Append len bytes.  Returns 0, or -1 if the reply would grow past REPLY_MAX. */
static int reply_append(struct reply *r, const char *data, size_t len)
{
    if (r->len + len > REPLY_MAX)
        return -1;
    if (r->len + len > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + len)
            cap *= 2;
        char *grown = realloc(r->data, cap);
        if (grown == NULL)
            fatal(errno, "realloc");
        r->data = grown;
        r->cap = cap;
    }
    memcpy(r->data + r->len, data, len);
    r->len += len;
    return 0;
}

/* Replace the reply with "error: <message>\n". */
static void reply_error(struct reply *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void reply_error(struct reply *r, const char *fmt, ...)
{
    char text[REQUEST_MAX + 256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    reply_reset(r);
    reply_append(r, "error: ", 7);
    reply_append(r, text, strlen(text));
    reply_append(r, "\n", 1);
}

static void run_pwd(struct reply *r)
{
    /* TODO: getcwd() into a PATH_MAX buffer; the reply is the path and a '\n'.
     * If getcwd fails, reply_error(r, "pwd: %s", strerror(errno)).
     * (The source course frees this stack buffer afterwards: never free() what
     * malloc() did not give you.) */
    (void)r;
    TODO("run_pwd");
}

/* dir is used exactly as given: no quotes, no ~, no variables -- just a path. */
static void run_cd(struct reply *r, const char *dir)
{
    /* TODO: chdir(dir).  On failure reply `error: cd: DIR: <strerror>`; on success
     * the reply stays empty.  A failed chdir changes nothing, so "keep the old
     * directory" comes for free -- as long as you don't chdir anywhere first.
     * No quote removal, no ~, no $HOME: DIR is used exactly as it came. */
    (void)r;
    (void)dir;
    TODO("run_cd");
}

static int compare_names(const void *a, const void *b)
{
    /* TODO (one line): qsort hands you pointers to the array's elements, and the
     * elements are char *: compare the strings they point at with strcmp. */
    (void)a;
    (void)b;
    TODO("compare_names");
}

/* The visible names of the current directory, sorted by byte value, one per line. */
static void run_ls(struct reply *r)
{
    /* TODO: opendir("."), readdir() until NULL, skip every name that starts with
     * '.' ("." and ".." too).  Collect copies of the names (readdir may reuse its
     * buffer), closedir, sort them with qsort + compare_names, then append each name
     * and a '\n' to r.  reply_append returns -1 once the reply would pass
     * REPLY_MAX: then reply_error(r, "ls: listing longer than %u bytes", ...).
     * Free what you strdup'ed.  An error from opendir: `error: ls: <strerror>`. */
    (void)r;
    TODO("run_ls");
}

/* Carry out one request line (without its '\n') into r.  Names must match exactly. */
static void run_command(const char *line, struct reply *r)
{
    /* TODO: reply_reset(r), then pick the command by its WHOLE name:
     *   "pwd" -> run_pwd;  "ls" -> run_ls;  "cd DIR" (DIR = everything after "cd ",
     *   not empty) -> run_cd;  "cd" alone, or "cd " with nothing after the space ->
     *   reply_error "cd: missing directory";
     *   anything else, the empty line included -> reply_error "unknown command '%s'".
     * Compare with strcmp, not strncmp(line, "ls", strlen(line)): that one says
     * "l" and "" are "ls".  And never pass the line to system()/popen(): a shell
     * would run `cd ; touch pwned` as two commands. */
    (void)line;
    (void)r;
    TODO("run_command");
}

/* Serve one client until it closes or the connection fails. */
static void serve(int conn, struct reply *r)
{
    /* TODO: one line_reader for this connection (static: it is 8 KiB) and a line
     * buffer where a request of 4095 bytes, its '\n' and the NUL fit
     * (char line[REQUEST_MAX + 1]); loop:
     *   read_line() -> 0: the client is done (its FIN, or it died): return.
     *               -> -1/EMSGSIZE: reply_error "request longer than ..." and go on
     *                  (read_line skips the rest of that line for you).
     *               -> -1 otherwise: warning(errno, "read"), return.
     *               -> n > 0: drop the '\n', run_command().
     *   Then send the reply as ONE frame, even when it is empty: write_frame().
     *   If that fails the client is gone: warning(errno, "write") and return --
     *   the session ends, the server does not. */
    (void)conn;
    (void)r;
    TODO("serve");
}

static void set_nodelay(int fd)
{
    int on = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) < 0)
        warning(errno, "setsockopt TCP_NODELAY");
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);

    /* TODO: a client that vanishes while we reply must end its session, not the
     * server.  Writing to a connection the peer has closed raises SIGPIPE, whose
     * default action kills the process.  Decide here, once, what it does. */

    int listen_fd = tcp_listen_or_die(NULL, port, 16);
    printf("listening on %d\n", local_port(listen_fd));

    struct reply reply = { 0 };
    for (;;) {
        int conn = accept(listen_fd, NULL, NULL);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fatal(errno, "accept");
        }
        printf("client connected\n");
        set_nodelay(conn);
        serve(conn, &reply);
        if (close(conn) < 0)
            warning(errno, "close");
        printf("client closed\n");
    }
}
