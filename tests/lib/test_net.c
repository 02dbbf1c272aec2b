/*
 * test_net.c - ports, listening and connecting sockets, fill_sockaddr and
 * format_addr (with the exact lengths the kernel reports).  The _or_die
 * failures run in a child process whose stderr and exit status are checked.
 */
#include "testutil.h"

#include <fcntl.h>
#include <stddef.h>

/* ---- children that are expected to die ----------------------------------- */

struct call {
    enum { PARSE_PORT, LISTEN, CONNECT } what;
    const char *text;
    uint16_t port;
};

static void make_call(void *arg)
{
    const struct call *c = arg;

    switch (c->what) {
    case PARSE_PORT:
        printf("port %u\n", parse_port_or_die(c->text));
        break;
    case LISTEN:
        tcp_listen_or_die(c->text, c->port, 1);
        break;
    case CONNECT:
        tcp_connect_or_die(c->text, c->port);
        break;
    }
}

/* The call exits with status 1 and exactly this message on stderr. */
#define EXPECT_DEATH(call, message)                                             \
    do {                                                                        \
        struct child_result res_;                                               \
        run_child(make_call, &(call), &res_);                                   \
        CHECK(WIFEXITED(res_.status));                                          \
        CHECK_INT(WEXITSTATUS(res_.status), ==, 1);                             \
        CHECK_STR(res_.err, message);                                           \
        CHECK_STR(res_.out, "");                                                \
    } while (0)

static void test_parse_port(void)
{
    CHECK_INT(parse_port_or_die("0"), ==, 0);
    CHECK_INT(parse_port_or_die("8080"), ==, 8080);
    CHECK_INT(parse_port_or_die("080"), ==, 80);
    CHECK_INT(parse_port_or_die("65535"), ==, 65535);

    static const char *const bad[] = {
        "65536", "-1", "", "abc", "80x", " 80", "+80", "8 0", "0x50",
        "99999999999999999999999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct call c = { PARSE_PORT, bad[i], 0 };
        char want[64];
        snprintf(want, sizeof(want), "invalid port '%s'\n", bad[i]);
        EXPECT_DEATH(c, want);
    }
}

static void test_fill_sockaddr(void)
{
    struct sockaddr_storage ss;

    CHECK_ERRNO(fill_sockaddr(&ss, "300.1.1.1", 80), EINVAL);
    CHECK_ERRNO(fill_sockaddr(&ss, "1.2.3", 80), EINVAL);
    CHECK_ERRNO(fill_sockaddr(&ss, "localhost", 80), EINVAL);
    CHECK_ERRNO(fill_sockaddr(&ss, "", 80), EINVAL);
    CHECK_ERRNO(fill_sockaddr(&ss, "::1::2", 80), EINVAL);
    CHECK_ERRNO(fill_sockaddr(&ss, NULL, 80), EINVAL);

    CHECK_INT(fill_sockaddr(&ss, "10.0.0.1", 80), ==, sizeof(struct sockaddr_in));
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)&ss;
    CHECK_INT(v4->sin_family, ==, AF_INET);
    CHECK_MEM(&v4->sin_port, "\x00\x50", 2);           /* network byte order */
    CHECK_MEM(&v4->sin_addr, "\x0a\x00\x00\x01", 4);

    CHECK_INT(fill_sockaddr(&ss, "::1", 443), ==, sizeof(struct sockaddr_in6));
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&ss;
    CHECK_INT(v6->sin6_family, ==, AF_INET6);
    CHECK_MEM(&v6->sin6_port, "\x01\xbb", 2);
    CHECK(IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr));
    CHECK_INT(v6->sin6_flowinfo, ==, 0);
    CHECK_INT(v6->sin6_scope_id, ==, 0);
}

/* ---- format_addr ------------------------------------------------------------ */

/*
 * Format a copy of the address in a heap block of exactly len bytes, into a
 * heap block of exactly size bytes: ASan catches any read or write outside.
 */
static void expect_format(const void *addr, socklen_t len, size_t size, const char *want,
                          int line)
{
    void *copy = malloc(len > 0 ? len : 1);
    char *buf = malloc(size);

    if (copy == NULL || buf == NULL)
        DIE("malloc");
    memcpy(copy, addr, len);
    char *r = format_addr(copy, len, buf, size);
    if (r != buf || strcmp(buf, want) != 0)
        CHECK_FAILED_("%s:%d: format_addr gave \"%s\", want \"%s\"\n", __FILE__, line,
                      r == buf ? buf : "(not buf)", want);
    free(copy);
    free(buf);
}

#define EXPECT_FORMAT(addr, len, want) expect_format(addr, len, ADDR_STRLEN, want, __LINE__)

static socklen_t unix_addr(struct sockaddr_un *sun, const char *path, size_t path_len)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, path_len);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len);
}

static void test_format_inet(void)
{
    struct sockaddr_storage ss;
    int len;

    len = fill_sockaddr(&ss, "127.0.0.1", 8080);
    EXPECT_FORMAT(&ss, len, "127.0.0.1:8080");
    len = fill_sockaddr(&ss, "0.0.0.0", 0);
    EXPECT_FORMAT(&ss, len, "0.0.0.0:0");
    len = fill_sockaddr(&ss, "255.255.255.255", 65535);
    EXPECT_FORMAT(&ss, len, "255.255.255.255:65535");
    EXPECT_FORMAT(&ss, 4, "family 2 (4 bytes, too short)");

    len = fill_sockaddr(&ss, "::1", 8080);
    EXPECT_FORMAT(&ss, len, "[::1]:8080");
    len = fill_sockaddr(&ss, "2001:db8::1", 443);
    EXPECT_FORMAT(&ss, len, "[2001:db8::1]:443");
    len = fill_sockaddr(&ss, "::ffff:1.2.3.4", 1);
    EXPECT_FORMAT(&ss, len, "[::ffff:1.2.3.4]:1");
    len = fill_sockaddr(&ss, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
    EXPECT_FORMAT(&ss, len, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
    len = fill_sockaddr(&ss, "fe80::1", 80);
    ((struct sockaddr_in6 *)&ss)->sin6_scope_id = 2;
    EXPECT_FORMAT(&ss, len, "[fe80::1%2]:80");
    EXPECT_FORMAT(&ss, 20, "family 10 (20 bytes, too short)");

    /* Truncated to fit; NUL-terminated; nothing written past size. */
    len = fill_sockaddr(&ss, "127.0.0.1", 8080);
    expect_format(&ss, len, 6, "127.0", __LINE__);
    expect_format(&ss, len, 1, "", __LINE__);
}

static void test_format_unix(void)
{
    struct sockaddr_un sun;
    socklen_t len;
    char full[sizeof(sun.sun_path)];
    char want[ADDR_STRLEN];

    len = unix_addr(&sun, "/tmp/s", 7);             /* with its NUL, as the kernel says */
    EXPECT_FORMAT(&sun, len, "unix:/tmp/s");
    len = unix_addr(&sun, "/tmp/s", 6);             /* without */
    EXPECT_FORMAT(&sun, len, "unix:/tmp/s");
    memset(full, 'p', sizeof(full));                /* all 108 bytes, no NUL at all */
    full[0] = '/';
    len = unix_addr(&sun, full, sizeof(full));
    snprintf(want, sizeof(want), "unix:%.*s", (int)sizeof(full), full);
    EXPECT_FORMAT(&sun, len, want);

    len = unix_addr(&sun, "\0abstract", 9);
    EXPECT_FORMAT(&sun, len, "unix:@abstract");
    len = unix_addr(&sun, "\0a\0b", 4);             /* NULs inside the name show as '@' */
    EXPECT_FORMAT(&sun, len, "unix:@a@b");
    len = unix_addr(&sun, "\0", 1);
    EXPECT_FORMAT(&sun, len, "unix:@");
    expect_format(&sun, unix_addr(&sun, "\0abstract", 9), 9, "unix:@ab", __LINE__);

    len = unix_addr(&sun, "", 0);                   /* just the family */
    EXPECT_FORMAT(&sun, len, "unix:(unnamed)");

    struct sockaddr other = { .sa_family = 17 };    /* AF_PACKET, say */
    EXPECT_FORMAT(&other, sizeof(other), "family 17");
    EXPECT_FORMAT(&other, 0, "(no address)");
}

/* The same, with the lengths the kernel itself reports. */
static void test_format_kernel_unix_addresses(void)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char want[ADDR_STRLEN];
    int sv[2];

    stream_pair(sv);
    len = sizeof(ss);
    if (getsockname(sv[0], (struct sockaddr *)&ss, &len) < 0)
        DIE("getsockname");
    EXPECT_FORMAT(&ss, len, "unix:(unnamed)");
    close_pair(sv);

    struct sockaddr_un sun;
    char name[64];
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    snprintf(name, sizeof(name), "%csocklab-test-%d", '\0', (int)getpid());
    socklen_t alen = unix_addr(&sun, name, 1 + strlen(name + 1));
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, alen) < 0)
        DIE("bind abstract");
    len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        DIE("getsockname");
    snprintf(want, sizeof(want), "unix:@%s", name + 1);
    EXPECT_FORMAT(&ss, len, want);
    close(fd);

    char dir[] = "/tmp/socklab-test-XXXXXX";
    if (mkdtemp(dir) == NULL)
        DIE("mkdtemp");
    snprintf(name, sizeof(name), "%s/s", dir);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    alen = unix_addr(&sun, name, strlen(name) + 1);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, alen) < 0)
        DIE("bind %s", name);
    len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        DIE("getsockname");
    snprintf(want, sizeof(want), "unix:%s", name);
    EXPECT_FORMAT(&ss, len, want);
    CHECK_ERRNO(local_port(fd), EAFNOSUPPORT);
    close(fd);
    unlink(name);
    rmdir(dir);
}

/* ---- listening and connecting ------------------------------------------------ */

static void connect_and_check(const char *host, int family)
{
    int lfd = tcp_listen_or_die(host, 0, 16);
    int port = local_port(lfd);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char text[ADDR_STRLEN], want[ADDR_STRLEN];

    CHECK(port > 0);
    if (getsockname(lfd, (struct sockaddr *)&ss, &len) < 0)
        DIE("getsockname");
    CHECK_INT(ss.ss_family, ==, family);
    int on = 0;
    socklen_t onlen = sizeof(on);
    CHECK_INT(getsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, &onlen), ==, 0);
    CHECK(on != 0);
    CHECK_ERRNO(peer_port(lfd), ENOTCONN);

    int cfd = tcp_connect_or_die(host, (uint16_t)port);
    set_timeouts(cfd, HANG_BOUND_MS);
    CHECK_INT(peer_port(cfd), ==, port);
    int afd = accept(lfd, (struct sockaddr *)&ss, &len);
    if (afd < 0)
        DIE("accept");
    set_timeouts(afd, HANG_BOUND_MS);
    CHECK_INT(peer_port(afd), ==, local_port(cfd));
    CHECK_INT(local_port(afd), ==, port);
    snprintf(want, sizeof(want), family == AF_INET ? "%s:%d" : "[%s]:%d", host,
             local_port(cfd));
    CHECK_STR(format_addr((struct sockaddr *)&ss, len, text, sizeof(text)), want);

    char buf[4];
    CHECK_INT(writen(cfd, "ping", 4), ==, 4);
    CHECK_INT(readn(afd, buf, 4), ==, 4);
    CHECK_MEM(buf, "ping", 4);
    close(afd);
    close(cfd);
    close(lfd);
}

static void test_listen_connect_v4(void)
{
    connect_and_check("127.0.0.1", AF_INET);
}

static int have_ipv6_loopback(void)
{
    struct sockaddr_storage ss;
    int len = fill_sockaddr(&ss, "::1", 0);
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    int ok = fd >= 0 && bind(fd, (struct sockaddr *)&ss, (socklen_t)len) == 0;

    if (fd >= 0)
        close(fd);
    return ok;
}

static void test_listen_connect_v6(void)
{
    if (!have_ipv6_loopback()) {
        printf("     (no IPv6 loopback here: skipped)\n");
        return;
    }
    connect_and_check("::1", AF_INET6);
}

static void test_listen_wildcard(void)
{
    int lfd = tcp_listen_or_die(NULL, 0, 1);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char text[ADDR_STRLEN], want[ADDR_STRLEN];

    if (getsockname(lfd, (struct sockaddr *)&ss, &len) < 0)
        DIE("getsockname");
    snprintf(want, sizeof(want), "0.0.0.0:%d", local_port(lfd));
    CHECK_STR(format_addr((struct sockaddr *)&ss, len, text, sizeof(text)), want);
    close(lfd);
}

static void test_listen_connect_failures(void)
{
    /* A port that is in use, then (once closed) a port where nobody listens. */
    int lfd = tcp_listen_or_die("127.0.0.1", 0, 1);
    uint16_t port = (uint16_t)local_port(lfd);

    struct call in_use = { LISTEN, "127.0.0.1", port };
    EXPECT_DEATH(in_use, "bind: Address already in use (98)\n");
    close(lfd);
    struct call refused = { CONNECT, "127.0.0.1", port };
    EXPECT_DEATH(refused, "connect: Connection refused (111)\n");

    struct call bad_listen = { LISTEN, "300.1.1.1", 80 };
    EXPECT_DEATH(bad_listen, "invalid address '300.1.1.1'\n");
    struct call bad_connect = { CONNECT, "localhost", 80 };
    EXPECT_DEATH(bad_connect, "invalid address 'localhost'\n");
}

static void test_make_nonblocking(void)
{
    int sv[2];
    char c;

    stream_pair(sv);
    CHECK_INT(make_nonblocking(sv[0]), ==, 0);
    CHECK(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    CHECK_INT(make_nonblocking(sv[0]), ==, 0);          /* twice is fine */
    CHECK_ERRNO(read(sv[0], &c, 1), EAGAIN);
    CHECK(!(fcntl(sv[1], F_GETFL) & O_NONBLOCK));
    close_pair(sv);
    CHECK_ERRNO(make_nonblocking(-1), EBADF);
}

static void test_port_errors(void)
{
    CHECK_ERRNO(local_port(-1), EBADF);
    CHECK_ERRNO(peer_port(-1), EBADF);
    int fd = open("/dev/null", O_RDONLY);
    if (fd < 0)
        DIE("open /dev/null");
    CHECK_ERRNO(local_port(fd), ENOTSOCK);
    close(fd);
}

int main(void)
{
    watchdog_start(5);
    signal(SIGPIPE, SIG_IGN);

    RUN(test_parse_port);
    RUN(test_fill_sockaddr);
    RUN(test_format_inet);
    RUN(test_format_unix);
    RUN(test_format_kernel_unix_addresses);
    RUN(test_listen_connect_v4);
    RUN(test_listen_connect_v6);
    RUN(test_listen_wildcard);
    RUN(test_listen_connect_failures);
    RUN(test_make_nonblocking);
    RUN(test_port_errors);
    return check_exit_status();
}
