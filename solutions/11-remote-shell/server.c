/*
 * server PORT - a tiny remote shell: runs pwd, cd DIR and ls for one client at a
 * time, in its own working directory, which survives from one client to the next.
 *
 * Requests are lines; each reply is one length-prefixed frame (lib's write_frame).
 * The commands are carried out with getcwd, chdir and opendir -- never by a shell --
 * so nothing in a request is ever interpreted as shell syntax.
 * See README.md, "Contract".
 *
 * Reference solution for chapter 11.
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
    char path[PATH_MAX];

    if (getcwd(path, sizeof(path)) == NULL) {
        reply_error(r, "pwd: %s", strerror(errno));
        return;
    }
    reply_append(r, path, strlen(path));
    reply_append(r, "\n", 1);
}

/* dir is used exactly as given: no quotes, no ~, no variables -- just a path. */
static void run_cd(struct reply *r, const char *dir)
{
    if (chdir(dir) < 0)
        reply_error(r, "cd: %s: %s", dir, strerror(errno));
    /* success: an empty reply; a failed chdir leaves the directory as it was */
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The visible names of the current directory, sorted by byte value, one per line. */
static void run_ls(struct reply *r)
{
    DIR *dir = opendir(".");
    if (dir == NULL) {
        reply_error(r, "ls: %s", strerror(errno));
        return;
    }

    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *entry;
    errno = 0;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;                   /* hidden files, "." and ".." */
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(names, cap * sizeof(*names));
            if (grown == NULL)
                fatal(errno, "realloc");
            names = grown;
        }
        names[count] = strdup(entry->d_name);
        if (names[count] == NULL)
            fatal(errno, "strdup");
        count++;
    }
    int read_errno = errno;
    closedir(dir);

    qsort(names, count, sizeof(*names), compare_names);
    int too_long = 0;
    for (size_t i = 0; i < count && !too_long; i++)
        too_long = reply_append(r, names[i], strlen(names[i])) < 0 || reply_append(r, "\n", 1) < 0;
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);

    if (read_errno != 0)
        reply_error(r, "ls: %s", strerror(read_errno));
    else if (too_long)
        reply_error(r, "ls: listing longer than %u bytes", REPLY_MAX);
}

/* Carry out one request line (without its '\n') into r.  Names must match exactly. */
static void run_command(const char *line, struct reply *r)
{
    reply_reset(r);
    if (strcmp(line, "pwd") == 0)
        run_pwd(r);
    else if (strcmp(line, "ls") == 0)
        run_ls(r);
    else if (strncmp(line, "cd ", 3) == 0 && line[3] != '\0')
        run_cd(r, line + 3);
    else if (strcmp(line, "cd") == 0 || strcmp(line, "cd ") == 0)
        reply_error(r, "cd: missing directory");
    else
        reply_error(r, "unknown command '%s'", line);
}

/* Serve one client until it closes or the connection fails. */
static void serve(int conn, struct reply *r)
{
    static struct line_reader lr;       /* 8 KiB: keep it off the stack */
    char line[REQUEST_MAX + 1];

    line_reader_init(&lr, conn);
    for (;;) {
        ssize_t n = read_line(&lr, line, sizeof(line));
        if (n == 0)
            return;                     /* the client half-closed or went away */
        if (n < 0 && errno == EMSGSIZE) {
            reply_error(r, "request longer than %d bytes", REQUEST_MAX - 1);
        } else if (n < 0) {
            warning(errno, "read");
            return;
        } else {
            if (line[n - 1] == '\n')
                line[--n] = '\0';
            run_command(line, r);
        }
        if (write_frame(conn, r->data, (uint32_t)r->len) < 0) {
            warning(errno, "write");
            return;
        }
    }
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

    /* A client that vanishes while we reply must end its session, not the server. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        fatal(errno, "signal");

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
