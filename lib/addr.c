/*
 * addr.c - socket addresses: build one from text, turn one back into text, and
 * ask the kernel which ports a socket ended up with.
 */
#include "common.h"

#include <stddef.h>

int fill_sockaddr(struct sockaddr_storage *ss, const char *host, uint16_t port)
{
    memset(ss, 0, sizeof(*ss));     /* sin_zero and sin6_flowinfo must be zero */
    if (host != NULL) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;

        if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
            v4->sin_family = AF_INET;
            v4->sin_port = htons(port);
            return (int)sizeof(*v4);
        }
        if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
            v6->sin6_family = AF_INET6;
            v6->sin6_port = htons(port);
            return (int)sizeof(*v6);
        }
    }
    errno = EINVAL;
    return -1;
}

/* The port of an AF_INET/AF_INET6 address, or -1/EAFNOSUPPORT. */
static int port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    errno = EAFNOSUPPORT;
    return -1;
}

int local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    memset(&ss, 0, sizeof(ss));
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    return port_of(&ss);
}

int peer_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    memset(&ss, 0, sizeof(ss));
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    return port_of(&ss);
}

static void format_inet(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
    struct sockaddr_in sin;
    char ip[INET_ADDRSTRLEN];

    if (len < sizeof(sin)) {
        snprintf(buf, size, "family %d (%u bytes, too short)", AF_INET, (unsigned)len);
        return;
    }
    memcpy(&sin, sa, sizeof(sin));
    inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof(ip));
    snprintf(buf, size, "%s:%u", ip, ntohs(sin.sin_port));
}

static void format_inet6(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
    struct sockaddr_in6 sin6;
    char ip[INET6_ADDRSTRLEN];

    if (len < sizeof(sin6)) {
        snprintf(buf, size, "family %d (%u bytes, too short)", AF_INET6, (unsigned)len);
        return;
    }
    memcpy(&sin6, sa, sizeof(sin6));
    inet_ntop(AF_INET6, &sin6.sin6_addr, ip, sizeof(ip));
    /* A link-local address means nothing without its interface: show the index. */
    if (sin6.sin6_scope_id != 0)
        snprintf(buf, size, "[%s%%%u]:%u", ip, (unsigned)sin6.sin6_scope_id,
                 ntohs(sin6.sin6_port));
    else
        snprintf(buf, size, "[%s]:%u", ip, ntohs(sin6.sin6_port));
}

/*
 * AF_UNIX names are not NUL-terminated strings: the length says where they end.
 *   pathname  "unix:/tmp/s"     (the kernel may or may not count a trailing NUL)
 *   abstract  "unix:@name"      (sun_path[0] is NUL; any later NUL shows as '@',
 *                                the way ss(8) prints them)
 *   unnamed   "unix:(unnamed)"  (only the family: socketpair, unbound clients)
 */
static void format_unix(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
    const char *path = (const char *)sa + offsetof(struct sockaddr_un, sun_path);
    size_t path_len = 0;

    if (len > offsetof(struct sockaddr_un, sun_path))
        path_len = len - offsetof(struct sockaddr_un, sun_path);
    if (path_len > sizeof(((struct sockaddr_un *)NULL)->sun_path))
        path_len = sizeof(((struct sockaddr_un *)NULL)->sun_path);

    if (path_len == 0) {
        snprintf(buf, size, "unix:(unnamed)");
    } else if (path[0] != '\0') {
        snprintf(buf, size, "unix:%.*s", (int)strnlen(path, path_len), path);
    } else {
        size_t n = (size_t)snprintf(buf, size, "unix:@");
        for (size_t i = 1; i < path_len && n + 1 < size; i++, n++)
            buf[n] = path[i] != '\0' ? path[i] : '@';
        if (n < size)
            buf[n] = '\0';
    }
}

char *format_addr(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
    sa_family_t family;

    if (size == 0)
        return buf;
    if (sa == NULL || len < sizeof(family)) {
        snprintf(buf, size, "(no address)");
        return buf;
    }
    memcpy(&family, sa, sizeof(family));    /* sa may be unaligned or short */
    switch (family) {
    case AF_INET:
        format_inet(sa, len, buf, size);
        break;
    case AF_INET6:
        format_inet6(sa, len, buf, size);
        break;
    case AF_UNIX:
        format_unix(sa, len, buf, size);
        break;
    default:
        snprintf(buf, size, "family %d", family);
        break;
    }
    return buf;
}
