/* A correct httpd written differently: the head is located with memmem, lines are
 * walked with pointers instead of being cut, the whole file is read into one buffer
 * (one send per response), the DOCROOT check compares against "DOCROOT/" and a
 * per-connection counter lives in c->user. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "reactor.h"

enum { LIMIT = 8192, MAX_FIELDS = 100 };

static uint16_t port;
static char root_slash[PATH_MAX + 1];   /* "DOCROOT/" */

struct conn_state { unsigned served; };

struct req { int code; int minor; int close; char path[LIMIT]; };

static const char *phrase(int code)
{
    switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 505: return "HTTP Version Not Supported";
    }
    return "Error";
}

static void respond(struct rx_conn *c, int code, const char *type, const char *body, size_t len,
                    int close_after, int minor)
{
    char head[300];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nContent-Type: %s\r\n%s%s\r\n",
                     code, phrase(code), len, type, code == 405 ? "Allow: GET\r\n" : "",
                     close_after ? "Connection: close\r\n" : minor == 0 ? "Connection: keep-alive\r\n" : "");
    struct rx_buffer out;
    rx_buf_init(&out);
    rx_buf_append(&out, head, (size_t)n);
    rx_buf_append(&out, body, len);
    rx_conn_send(c, rx_buf_peek(&out), rx_buf_len(&out));
    rx_buf_free(&out);
}

static int unhex(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static int has_token(const char *v, size_t n, const char *tok)
{
    size_t t = strlen(tok);
    for (size_t i = 0; i + t <= n; i++) {
        if ((i == 0 || v[i - 1] == ',' || v[i - 1] == ' ') && strncasecmp(v + i, tok, t) == 0 &&
            (i + t == n || v[i + t] == ',' || v[i + t] == ' '))
            return 1;
    }
    return 0;
}

/* Parse [p, p+n): the head without its final blank line. */
static void parse(const char *p, size_t n, struct req *r)
{
    const char *end = p + n, *eol = memchr(p, '\n', n);
    const char *lend = eol ? eol : end;
    if (lend > p && lend[-1] == '\r') lend--;
    const char *s1 = memchr(p, ' ', (size_t)(lend - p));
    const char *s2 = s1 ? memchr(s1 + 1, ' ', (size_t)(lend - s1 - 1)) : NULL;
    if (!s1 || !s2 || s1 == p || s2 == s1 + 1 || memchr(s2 + 1, ' ', (size_t)(lend - s2 - 1)) ||
        lend - s2 - 1 != 8 || memcmp(s2 + 1, "HTTP/", 5) || s2[6] < '0' || s2[6] > '9' || s2[7] != '.' ||
        s2[8] < '0' || s2[8] > '9') { r->code = 400; return; }
    for (const char *m = p; m < s1; m++)
        if (*m < 'A' || *m > 'Z') { r->code = 400; return; }
    if (s2[6] != '1') { r->code = 505; return; }
    r->minor = s2[8] - '0';
    r->close = r->minor == 0;
    int fields = 0, body = 0;
    for (const char *l = eol ? eol + 1 : end; l < end;) {
        const char *e = memchr(l, '\n', (size_t)(end - l));
        if (!e) e = end;
        const char *le = (e > l && e[-1] == '\r') ? e - 1 : e;
        const char *colon = memchr(l, ':', (size_t)(le - l));
        if (++fields > MAX_FIELDS) { r->code = 431; return; }
        if (!colon || colon == l) { r->code = 400; return; }
        for (const char *q = l; q < colon; q++)
            if (*q <= ' ' || *q >= 127) { r->code = 400; return; }
        const char *v = colon + 1;
        while (v < le && (*v == ' ' || *v == '\t')) v++;
        const char *ve = le;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        size_t nl = (size_t)(colon - l), vl = (size_t)(ve - v);
        if (nl == 10 && strncasecmp(l, "Connection", 10) == 0) {
            if (has_token(v, vl, "close")) r->close = 1;
            else if (r->minor == 0 && has_token(v, vl, "keep-alive")) r->close = 0;
        } else if (nl == 14 && strncasecmp(l, "Content-Length", 14) == 0) {
            body |= !(vl == 1 && *v == '0');
        } else if (nl == 17 && strncasecmp(l, "Transfer-Encoding", 17) == 0) {
            body = 1;
        }
        l = e + 1;
    }
    if (s1 - p != 3 || memcmp(p, "GET", 3)) { r->code = 405; return; }
    if (body || s1[1] != '/') { r->code = 400; return; }
    size_t k = 0;
    for (const char *t = s1 + 1; t < s2 && *t != '?' && *t != '#'; t++) {
        char ch = *t;
        if (ch == '%') {
            int a = t + 2 < s2 ? unhex(t[1]) : -1, b = a >= 0 ? unhex(t[2]) : -1;
            if (b < 0 || (a | b) == 0) { r->code = 400; return; }
            ch = (char)(a * 16 + b);
            t += 2;
        }
        r->path[k++] = ch;
    }
    r->path[k] = '\0';
    r->code = 200;
}

static int open_file(const char *path, char **data, size_t *len, bool *index)
{
    *index = false;
    char want[PATH_MAX + LIMIT], got[PATH_MAX];
    snprintf(want, sizeof want, "%s%s", root_slash, path + 1);
    for (int round = 0; round < 2; round++) {
        if (!realpath(want, got))
            return errno == EACCES ? 403 : 404;
        size_t rl = strlen(root_slash);
        if (strncmp(got, root_slash, rl) != 0 && strncmp(got, root_slash, rl - 1) != 0)
            return 403;
        if (strncmp(got, root_slash, rl) != 0 && got[rl - 1] != '\0')
            return 403;                 /* "/srv/www2" is not inside "/srv/www" */
        struct stat st;
        if (stat(got, &st) < 0)
            return 404;
        if (S_ISDIR(st.st_mode)) {
            snprintf(want, sizeof want, "%s/index.html", got);
            *index = true;
            continue;
        }
        if (!S_ISREG(st.st_mode))
            return 403;
        int fd = open(got, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return errno == EACCES ? 403 : 404;
        *data = malloc((size_t)st.st_size + 1);
        if (*data == NULL)
            fatal(errno, "malloc");
        *len = 0;
        while (*len < (size_t)st.st_size) {
            ssize_t n = read(fd, *data + *len, (size_t)st.st_size - *len);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            *len += (size_t)n;
        }
        close(fd);
        return 200;
    }
    return 404;
}

static const char *mime(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot && (!strcmp(dot, ".html") || !strcmp(dot, ".htm"))) return "text/html";
    static const char *const types[][2] = {
        {".txt", "text/plain"}, {".css", "text/css"}, {".js", "text/javascript"},
        {".json", "application/json"}, {".png", "image/png"}, {".jpg", "image/jpeg"},
    };
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(dot, types[i][0]))
            return types[i][1];
    return "application/octet-stream";
}

static void pump(struct rx_conn *c)
{
    struct conn_state *cs = c->user;
    while (rx_conn_is_writable(c) && rx_conn_queued(c) < RX_OUTPUT_HIGH) {
        const char *p = rx_buf_peek(rx_conn_input(c));
        size_t n = rx_buf_len(rx_conn_input(c));
        size_t skip = 0;
        while (skip < n && (p[skip] == '\r' || p[skip] == '\n')) skip++;
        rx_buf_consume(rx_conn_input(c), skip);
        p += skip;
        n -= skip;
        const char *a = memmem(p, n, "\r\n\r\n", 4), *b = memmem(p, n, "\n\n", 2);
        const char *e = a && (!b || a < b) ? a : b;
        size_t head = e ? (size_t)(e - p) : 0, total = e ? head + (e == a ? 4 : 2) : 0;
        if (!e || total > LIMIT) {
            if (n >= LIMIT || total > LIMIT) {
                respond(c, 431, "text/plain", "too large\n", 10, 1, 1);
                rx_conn_shutdown(c);
            }
            break;
        }
        struct req r = {.minor = 1};
        if (memchr(p, '\0', head)) r.code = 400;
        else parse(p, head, &r);
        rx_buf_consume(rx_conn_input(c), total);
        cs->served++;
        if (r.code == 200) {
            char *data = NULL;
            size_t len = 0;
            bool index;
            r.code = open_file(r.path, &data, &len, &index);
            if (r.code == 200) {
                respond(c, 200, mime(index ? "index.html" : r.path), data, len,
                        r.close, r.minor);
                free(data);
            } else {
                char msg[64];
                int ml = snprintf(msg, sizeof msg, "%d\n", r.code);
                respond(c, r.code, "text/plain", msg, (size_t)ml, r.close, r.minor);
            }
        } else {
            char msg[64];
            int ml = snprintf(msg, sizeof msg, "%d %s\n", r.code, phrase(r.code));
            respond(c, r.code, "text/plain", msg, (size_t)ml, 1, r.minor);
            r.close = 1;
        }
        if (r.close)
            rx_conn_shutdown(c);
    }
    if (!rx_conn_is_writable(c))
        rx_buf_consume(rx_conn_input(c), rx_buf_len(rx_conn_input(c)));
}

static void opened(struct rx_conn *c)
{
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->user = calloc(1, sizeof(struct conn_state));
    if (c->user == NULL)
        fatal(errno, "calloc");
}

static void data(struct rx_conn *c, struct rx_buffer *in) { pump(c); }
static void drained(struct rx_conn *c) { pump(c); }
static void closed(struct rx_conn *c) { free(c->user); c->user = NULL; }

static const struct rx_callbacks cbs = {opened, data, drained, closed};

static void ready(void) { printf("listening on %u\n", port); }

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4)
        fatal(0, "usage: %s PORT DOCROOT [THREADS]", argv[0]);
    port = parse_port_or_die(argv[1]);
    char real[PATH_MAX];
    if (!realpath(argv[2], real))
        fatal(errno, "%s", argv[2]);
    struct stat st;
    if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode))
        fatal(ENOTDIR, "%s", argv[2]);
    snprintf(root_slash, sizeof root_slash, "%s%s", real, strcmp(real, "/") ? "/" : "");
    int threads = argc == 4 ? atoi(argv[3]) : 0;
    if (threads < 0 || threads > 64)
        fatal(0, "THREADS: 0..64");
    return rx_server_run(rx_server_new(port, threads, &rx_epoll_backend, &cbs), ready);
}
