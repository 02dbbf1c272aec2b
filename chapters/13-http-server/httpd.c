/* httpd PORT DOCROOT [THREADS] - an HTTP/1.1 static file server on the reactor library.
 * (skeleton: the TODOs are yours; `./lab check 13` tells you what is missing)
 *
 * The reactor (lesson 10) does the sockets: it reads into each connection's input
 * buffer, calls on_data, writes what we queue with rx_conn_send, and sends the FIN of
 * rx_conn_shutdown only once everything queued has gone out.  This file is the HTTP part:
 * cut whole requests out of the input buffer, decide, answer, keep or end the connection.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "reactor.h"

#define HEAD_MAX 8192           /* request line + headers + blank line, bytes */
#define HEADERS_MAX 100         /* header lines per request */
#define FILE_CHUNK 65536

static uint16_t port;
static char docroot[PATH_MAX];  /* realpath of DOCROOT, without a trailing slash */
static size_t docroot_len;

struct request {
    char *method, *target;
    int minor;                  /* HTTP/1.<minor> */
    bool keep_alive;
    bool has_body;
};

/* ---- parsing ------------------------------------------------------------ */

/* Length of the next line (up to and including '\n') in p[0..len), or 0 if incomplete. */
static size_t line_length(const char *p, size_t len)
{
    const char *nl = len > 0 ? memchr(p, '\n', len) : NULL;    /* an empty buffer may be NULL */
    return nl == NULL ? 0 : (size_t)(nl - p) + 1;
}

/* Length of the request head at p (through its empty line), 0 while incomplete,
 * or -1 once it cannot fit in HEAD_MAX. */
static ssize_t head_length(const char *p, size_t len)
{
    /* TODO: walk the lines of p[0..len) (line_length helps).  The head ends with the
     * first empty line ("\r\n" or "\n"): return its length, including that line.
     * No empty line yet: 0 -- but -1 if HEAD_MAX bytes are already here, because a
     * client must not make us buffer without limit. */
    TODO("head_length: find the end of the request head, within HEAD_MAX");
    return 0;
}

/* The line starting at s (which must contain a '\n'), NUL-terminated without its CR/LF;
 * *next points past it. */
static char *cut_line(char *s, char **next)
{
    char *nl = strchr(s, '\n');
    *nl = '\0';
    *next = nl + 1;
    if (nl > s && nl[-1] == '\r')
        nl[-1] = '\0';
    return s;
}

static bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (*s <= ' ' || *s >= 127 || strchr("()<>@,;:\\\"/[]?={}", *s) != NULL)
            return false;
    return true;
}

/* "close" / "keep-alive" among the comma-separated tokens of a Connection header. */
static void connection_tokens(char *value, struct request *r)
{
    char *save = NULL;
    for (char *t = strtok_r(value, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
        if (strcasecmp(t, "close") == 0)
            r->keep_alive = false;
        else if (strcasecmp(t, "keep-alive") == 0 && r->minor == 0)
            r->keep_alive = true;
    }
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Parse the head (NUL-terminated, every line ends in '\n').  Returns 0 or an HTTP status. */
static int parse_head(char *head, struct request *r)
{
    /* TODO: the request line, cut with cut_line: exactly three parts separated by single
     * spaces -- a token method (is_token), a non-empty target, and a version HTTP/d.d.
     * Anything else is 400; a well-formed version whose major is not 1 is 505.
     * Set r->minor and the default r->keep_alive (1.1: on; 1.0: off).
     * Then the header lines until the empty one: at most HEADERS_MAX (else 431); each is
     * a token name, ':', a value (trim it).  Names compare case-insensitively:
     *   Connection         -> connection_tokens
     *   Content-Length != 0, Transfer-Encoding -> the request has a body
     * Last: a method other than GET is 405; a GET with a body is 400 (we never read bodies,
     * so the body would be taken for the next request).  Return 0 when all is well. */
    TODO("parse_head: request line and headers");
    return 400;
}

/* ---- files -------------------------------------------------------------- */

static int hex(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* The path of an origin-form target, query cut off and %XX decoded into out. */
static int decode_path(const char *target, char *out, size_t size)
{
    /* TODO: origin-form only: the target must start with '/' (else 400).  Copy it into out
     * up to '?' or '#' (the query does not name a file), turning each %XX into its byte.
     * A '%' not followed by two hex digits, or %00, is 400; a path that does not fit in
     * `size` is 414.  Decode BEFORE any check on the path: "%2e%2e" is "..". */
    TODO("decode_path: percent-decoding, query cut off");
    return 400;
}

static bool inside_docroot(const char *real)
{
    return strncmp(real, docroot, docroot_len) == 0 &&
           (real[docroot_len] == '\0' || real[docroot_len] == '/');
}

/* DOCROOT + path, with symlinks and ".." resolved by realpath(3), checked to stay inside
 * DOCROOT; a directory means its index.html.  Returns 0 or an HTTP status. */
static int resolve(const char *path, char real[PATH_MAX])
{
    /* TODO: glue docroot and path into `full`, and let realpath() resolve it: it follows
     * every symlink and "..", so what comes back is where the file really is.
     *   realpath fails: 403 for EACCES, else 404;
     *   the result is not inside DOCROOT (inside_docroot): 403 -- whatever the request
     *   said, this is the check that counts;
     *   a regular file: 0 (real holds its path); a directory: try its index.html once
     *   (resolving and checking again: index.html may be a symlink too); anything else 403. */
    char full[PATH_MAX + HEAD_MAX + 16];
    snprintf(full, sizeof full, "%s%s", docroot, path);
    TODO("resolve: realpath and the DOCROOT check");
    return 404;
}

static const char *content_type(const char *path)
{
    static const struct { const char *ext, *type; } types[] = {
        {".html", "text/html"}, {".htm", "text/html"}, {".txt", "text/plain"},
        {".css", "text/css"}, {".js", "text/javascript"}, {".json", "application/json"},
        {".png", "image/png"}, {".jpg", "image/jpeg"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

/* ---- responses ---------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 505: return "HTTP Version Not Supported";
    default: return "Internal Server Error";
    }
}

/* Status line and headers into buf (at least 512 bytes); returns their length. */
static size_t format_head(char *buf, size_t size, int status, const char *type, long long length,
                          bool keep_alive, bool http10)
{
    /* TODO: the status line "HTTP/1.1 <status> <reason>", then these headers, each ending
     * in CRLF: Content-Type, Content-Length (always -- even on errors: it is how a
     * keep-alive client knows where the body ends), "Allow: GET" on a 405,
     * "Connection: close" when the connection ends after this response, and
     * "Connection: keep-alive" when an HTTP/1.0 client asked to keep it; then an empty
     * line.  snprintf into buf; return the length. */
    TODO("format_head: status line and headers");
    return 0;
}

/* An error answer with a short text body, head and body in one send. */
static void send_error(struct rx_conn *c, int status, bool keep_alive, bool http10)
{
    char body[64], buf[640];
    int blen = snprintf(body, sizeof body, "%d %s\n", status, reason(status));
    size_t n = format_head(buf, sizeof buf, status, "text/plain", blen, keep_alive, http10);
    memcpy(buf + n, body, (size_t)blen);
    rx_conn_send(c, buf, n + (size_t)blen);
}

/* The head and the file's bytes, as few sends as possible: a small file leaves in one
 * segment.  Returns false if the file could not be sent whole (the connection must end). */
static bool send_file(struct rx_conn *c, const char *real, bool keep_alive, bool http10)
{
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        send_error(c, err == EACCES ? 403 : 404, keep_alive, http10);
        return true;
    }
    char buf[FILE_CHUNK];
    size_t used = format_head(buf, sizeof buf, 200, content_type(real), (long long)st.st_size,
                              keep_alive, http10);
    off_t left = st.st_size;
    while (left > 0) {
        size_t want = sizeof buf - used < (size_t)left ? sizeof buf - used : (size_t)left;
        ssize_t n = read(fd, buf + used, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {                   /* shrank under us: the promised length is a lie now */
            warning(n < 0 ? errno : 0, "read %s", real);
            close(fd);
            rx_conn_send(c, buf, used);
            return false;
        }
        used += (size_t)n;
        left -= n;
        if (used == sizeof buf || left == 0) {
            rx_conn_send(c, buf, used);
            used = 0;
        }
    }
    if (used > 0)
        rx_conn_send(c, buf, used);     /* an empty file: the head alone */
    close(fd);
    return true;
}

/* Answer one parsed request (status = the parser's verdict).  Returns whether the
 * connection stays open for the next request. */
static bool answer(struct rx_conn *c, int status, struct request *r)
{
    bool http10 = r->minor == 0;
    char path[HEAD_MAX], real[PATH_MAX];
    if (status == 0)
        status = decode_path(r->target, path, sizeof path);
    if (status != 0) {                  /* the request itself is wrong: end the connection */
        send_error(c, status, false, http10);
        return false;
    }
    status = resolve(path, real);
    if (status != 0) {
        send_error(c, status, r->keep_alive, http10);
        return r->keep_alive;
    }
    return send_file(c, real, r->keep_alive, http10) && r->keep_alive;
}

/* ---- the connection ----------------------------------------------------- */

/* Serve every complete request in the input buffer, in order (pipelining), but stop
 * while a lot of output is queued: on_drain comes back for the rest. */
static void serve_pending(struct rx_conn *c)
{
    /* TODO: a loop over the requests waiting in rx_conn_input(c), for as long as the
     * connection takes output (rx_conn_is_writable: open, not shutting down) and its
     * output queue (rx_conn_queued) is below RX_OUTPUT_HIGH:
     *   - skip empty lines ("\r", "\n") before a request;
     *   - head_length: 0 -> return and wait for more bytes (never spin, never block);
     *     -1 -> a 431 error, rx_conn_shutdown, stop;
     *   - copy the head out (NUL-terminated; a head containing a NUL byte is a 400),
     *     consume it from the buffer, parse_head, answer;
     *   - answer() says the connection ends: rx_conn_shutdown (the FIN waits for the
     *     queued output -- rx_conn_close would drop it) and stop.
     * Keep going after a request: a client may pipeline several in one segment.
     * Once shutting down, throw away whatever input is left. */
    TODO("serve_pending: cut requests out of the input buffer and answer them in order");
}

/* Small responses go out at once: without this, Nagle's algorithm holds a small
 * segment until the previous one is acknowledged, and the client delays its ACK
 * (up to 40 ms on Linux) -- pipelined responses would crawl. */
static void on_open(struct rx_conn *c)
{
    int one = 1;
    if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        warning(errno, "setsockopt TCP_NODELAY");
}

static void on_data(struct rx_conn *c, struct rx_buffer *in)
{
    serve_pending(c);
}

static void on_drain(struct rx_conn *c)
{
    serve_pending(c);
}

static const struct rx_callbacks callbacks = {
    .on_open = on_open,
    .on_data = on_data,
    .on_drain = on_drain,
};

static void on_ready(void)
{
    printf("listening on %u\n", port);
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4)
        fatal(0, "usage: %s PORT DOCROOT [THREADS]", argv[0]);
    port = parse_port_or_die(argv[1]);
    if (realpath(argv[2], docroot) == NULL)
        fatal(errno, "realpath %s", argv[2]);
    struct stat st;
    if (stat(docroot, &st) < 0 || !S_ISDIR(st.st_mode))
        fatal(ENOTDIR, "%s", argv[2]);
    docroot_len = strlen(docroot);
    if (docroot_len == 1)
        docroot_len = 0;                /* DOCROOT "/": every path is inside */
    int threads = argc > 3 ? atoi(argv[3]) : 0;
    if (threads < 0 || threads > 64)
        fatal(0, "THREADS must be 0..64");
    struct rx_server *srv = rx_server_new(port, threads, &rx_epoll_backend, &callbacks);
    return rx_server_run(srv, on_ready);
}
